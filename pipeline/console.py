"""What `inatvision run` prints: a line when each component starts and when it finishes (its time, whether
the cache answered, and the counts that matter), the components' progress lines, and nothing else.
The component lines come from TFX's launcher (patched for the run's duration: it has no hooks).

Everything else (library logs, Python warnings, TensorFlow's C++ messages, Beam workers' output) goes to
`runs/<id>/run.log`; with `-v` it goes to the terminal as well as it always did.
"""
from __future__ import annotations

import io
import logging
import os
import sys
import time
from unittest import mock

from inatvision import progress

LOG_FILE = "run.log"


class _ProgressLines(logging.Handler):
    """The components' progress lines, and their summaries kept for the finish line."""

    def __init__(self, write):
        super().__init__(logging.INFO)
        self.write = write
        self.summaries: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        component = getattr(record, "component", None)
        if component is None:
            return
        if record.summary:
            self.summaries[component] = record.getMessage().split(": ", 1)[1]
        else:
            self.write(f"    {record.getMessage()}")


def _timed_launch(write, summaries):
    """TFX's `Launcher.launch` with a line when a component starts and when it finishes or fails."""
    from tfx.orchestration.portable import launcher

    original = launcher.Launcher.launch
    original_prepare = launcher.Launcher._prepare_execution

    def prepare(self):
        result = original_prepare(self)
        self._inatvision_cached = not result.is_execution_needed
        return result

    def launch(self):
        name = self._pipeline_node.node_info.id
        write(f"{time.strftime('%H:%M:%S')} {name} ...")
        started = time.monotonic()
        try:
            result = original(self)
        except BaseException:
            write(f"{time.strftime('%H:%M:%S')} {name} failed after {progress.duration(time.monotonic() - started)}")
            raise
        how = "cached" if getattr(self, "_inatvision_cached", False) else progress.duration(
            time.monotonic() - started)
        counts = summaries.pop(name, "")
        write(f"{time.strftime('%H:%M:%S')} {name} done ({how}){': ' + counts if counts else ''}")
        return result

    return mock.patch.multiple(launcher.Launcher, launch=launch, _prepare_execution=prepare)


class Console:
    """Within `with Console(run_dir, verbose):`, the terminal shows the component lines only (unless verbose)."""

    def __init__(self, run_dir: str, verbose: bool, terminal=None):
        """`terminal`: where the lines go (default: this process's standard output)."""
        self.log_path = os.path.join(run_dir, LOG_FILE)
        self.verbose = verbose
        self.given = terminal

    def __enter__(self) -> "Console":
        sys.stdout.flush()
        sys.stderr.flush()
        self.saved, self.terminal = None, None
        if self.given is None:
            try:
                self.terminal = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
            except (AttributeError, ValueError, io.UnsupportedOperation):  # stdout is not a file (a test runner)
                self.verbose = True
        if not self.verbose:
            self.saved = (os.dup(1), os.dup(2))
            self.log = open(self.log_path, "a", buffering=1)
            os.dup2(self.log.fileno(), 1)  # C++ messages, Beam workers and print() land in run.log
            os.dup2(self.log.fileno(), 2)
            self.streams = (sys.stdout, sys.stderr)  # Python-level writers too, where they are not the fds
            sys.stdout = sys.stderr = self.log
        self.handler = _ProgressLines(self.write)
        self.level = progress.LOGGER.level
        progress.LOGGER.setLevel(logging.INFO)
        progress.LOGGER.addHandler(self.handler)
        if not self.verbose:  # the log keeps every library's records, INFO included, whatever else listens
            self.log_handler = logging.StreamHandler(self.log)
            self.log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            logging.getLogger().addHandler(self.log_handler)
            self.root_level = logging.getLogger().level
            logging.getLogger().setLevel(logging.INFO)
        return self

    def watching_components(self):
        """A context in which every TFX component run prints its start and finish lines (loads TFX)."""
        return _timed_launch(self.write, self.handler.summaries)

    def write(self, line: str) -> None:
        (self.given or self.terminal or sys.stdout).write(line + "\n")

    def __exit__(self, *exc) -> None:
        progress.LOGGER.removeHandler(self.handler)
        progress.LOGGER.setLevel(self.level)
        if not self.verbose:
            logging.getLogger().setLevel(self.root_level)
            logging.getLogger().removeHandler(self.log_handler)
        sys.stdout.flush()
        sys.stderr.flush()
        if self.saved is not None:
            sys.stdout, sys.stderr = self.streams
            os.dup2(self.saved[0], 1)
            os.dup2(self.saved[1], 2)
            for fd in self.saved:
                os.close(fd)
            self.log.close()
        if self.terminal is not None:
            self.terminal.close()
