"""Progress that components report for people: `inatvision run` prints it, labelled with the component.

Components log through the `inatvision.progress` logger, so the same lines reach a terminal locally
(pipeline/console.py) and the container log on Kubeflow. `summary` is the one line of counts that matters
for a component (examples per split, classes, anomalies, top-1, verdict); the console appends it to the
component's finish line.
"""
import logging

LOGGER = logging.getLogger("inatvision.progress")


def report(component: str, message: str) -> None:
    """A line of progress, e.g. `epoch 2/4 ... ETA 1 min`."""
    LOGGER.info("%s: %s", component, message, extra={"component": component, "summary": False})


def summary(component: str, message: str) -> None:
    """The counts that matter, shown on the component's finish line."""
    LOGGER.info("%s: %s", component, message, extra={"component": component, "summary": True})


def duration(seconds: float) -> str:
    """`42 s`, `3 min 5 s`, `1 h 2 min`."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
