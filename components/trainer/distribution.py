"""The Trainer's `tf.distribute` strategy, chosen from where it runs.

- `TF_CONFIG` naming several workers (Vertex AI custom training, Kubeflow's training operator):
  `MultiWorkerMirroredStrategy`, one process per machine, collective all-reduce between them;
- otherwise more than one visible GPU: `MirroredStrategy` over them;
- otherwise the default strategy (one device).

`trainer.global_batch_size` is the global batch whichever it is: Keras splits it across replicas, and the
learning rate follows it (`TrainerConfig.effective_learning_rate`). A multi-worker cluster that does not come
together within `trainer.worker_timeout_s` ends the process (SIGTERM) with a message naming the addresses that
do not answer: TensorFlow itself waits for absent workers without a limit.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import socket
import subprocess
import sys

import tensorflow as tf

MEMBER_JOBS = ("chief", "worker")  # the jobs whose tasks train; `evaluator` runs beside them, `ps` is not used
WATCHDOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cluster_watch.py")
_ADDRESS = re.compile(r"^(?P<host>\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.\-]+):(?P<port>[0-9]{1,5})$")


class DistributionError(RuntimeError):
    """TF_CONFIG or the cluster it names is wrong for training."""


@dataclasses.dataclass(frozen=True)
class Cluster:
    """The training tasks TF_CONFIG names (chief first, then workers) and which one this process is."""

    members: tuple[str, ...]
    task_type: str
    task_index: int

    @property
    def rank(self) -> int:
        """This task's position among `members` (the chief, or worker 0 when there is no chief, is 0)."""
        return self.members.index(self.address)

    @property
    def address(self) -> str:
        return self._jobs[self.task_type][self.task_index]

    @property
    def is_chief(self) -> bool:
        return self.rank == 0

    @property
    def peers(self) -> tuple[str, ...]:
        return tuple(a for a in self.members if a != self.address)

    _jobs: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)


def parse_tf_config(text: str | None) -> Cluster | None:
    """The cluster in `TF_CONFIG`, or None when it is unset or names a single training task.

    Raises DistributionError naming what is wrong: not JSON, no workers, an address that is not host:port,
    a task that is not in the cluster, a parameter-server cluster.
    """
    if text is None or not text.strip():
        return None
    try:
        data = json.loads(text)
    except ValueError as error:
        raise DistributionError(f"TF_CONFIG is not JSON ({error}): {text[:200]!r}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cluster"), dict):
        raise DistributionError(f"TF_CONFIG has no \"cluster\" object: {text[:200]!r}")
    cluster = data["cluster"]
    if cluster.get("ps"):
        raise DistributionError(f"TF_CONFIG names parameter servers {cluster['ps']}: the Trainer trains with "
                                f"MultiWorkerMirroredStrategy (chief and workers only)")
    jobs: dict[str, list[str]] = {}
    for job in MEMBER_JOBS + ("evaluator",):
        addresses = cluster.get(job) or []
        if isinstance(addresses, str) or not isinstance(addresses, list):
            raise DistributionError(f"TF_CONFIG cluster.{job} must be a list of host:port, got {addresses!r}")
        for address in addresses:
            _check_address(address, job)
        jobs[job] = list(addresses)
    members = tuple(jobs["chief"] + jobs["worker"])
    if not members:
        raise DistributionError(f"TF_CONFIG names no chief or worker: {text[:200]!r}")
    if len(set(members)) != len(members):
        raise DistributionError(f"TF_CONFIG names an address twice: {list(members)}")
    task = data.get("task")
    if not isinstance(task, dict) or "type" not in task:
        raise DistributionError(f"TF_CONFIG has no \"task\" with a type and an index: {text[:200]!r}")
    task_type, task_index = task["type"], task.get("index", 0)
    if not isinstance(task_index, int) or task_type not in jobs or not 0 <= task_index < len(jobs[task_type]):
        raise DistributionError(f"TF_CONFIG task {task!r} is not in the cluster {cluster!r}")
    if task_type == "evaluator":
        raise DistributionError("TF_CONFIG task is an evaluator: the Trainer evaluates on its training workers")
    if len(members) == 1:
        return None
    return Cluster(members=members, task_type=task_type, task_index=task_index, _jobs=jobs)


def _check_address(address, job: str) -> None:
    match = _ADDRESS.match(address) if isinstance(address, str) else None
    if not match or not 0 < int(match["port"]) < 65536:
        raise DistributionError(f"TF_CONFIG cluster.{job} address {address!r} is not host:port")
    host = match["host"].strip("[]")
    try:
        socket.getaddrinfo(host, int(match["port"]))
    except socket.gaierror as error:
        raise DistributionError(f"TF_CONFIG cluster.{job} address {address!r}: host {host!r} does not resolve "
                                f"({error})") from None


def choose(cluster: Cluster | None, gpus: int) -> str:
    """"multi_worker", "mirrored" or "default": the pure decision behind `strategy_for`."""
    if cluster is not None:
        return "multi_worker"
    if gpus > 1:
        return "mirrored"
    return "default"


@dataclasses.dataclass
class Placement:
    """The strategy and this process's part in it."""

    strategy: tf.distribute.Strategy
    kind: str
    cluster: Cluster | None = None

    @property
    def is_chief(self) -> bool:
        return self.cluster is None or self.cluster.is_chief

    @property
    def num_workers(self) -> int:
        return len(self.cluster.members) if self.cluster else 1

    @property
    def worker_index(self) -> int:
        return self.cluster.rank if self.cluster else 0


def strategy_for(worker_timeout_s: float, environ=None) -> Placement:
    """The strategy for this process. Call it before any other TensorFlow op runs (TF_CONFIG's servers start here)."""
    environ = os.environ if environ is None else environ
    cluster = parse_tf_config(environ.get("TF_CONFIG"))
    kind = choose(cluster, len(tf.config.list_physical_devices("GPU")))
    if kind == "multi_worker":
        strategy = _join_cluster(cluster, worker_timeout_s)
    elif kind == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
    else:
        strategy = tf.distribute.get_strategy()
    logging.info("trainer: %s strategy, %d replicas in sync", kind, strategy.num_replicas_in_sync)
    return Placement(strategy, kind, cluster)


def _join_cluster(cluster: Cluster, timeout_s: float) -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy, then one all-reduce so that every worker is known to be there.

    TensorFlow waits for absent workers without a limit and holds the GIL meanwhile, so the limit is kept by a
    watchdog process (cluster_watch.py), told through its stdin when the cluster is together.
    """
    task = f"{cluster.task_type} {cluster.task_index} at {cluster.address}, TF_CONFIG names {list(cluster.members)}"
    watchdog = subprocess.Popen([sys.executable, WATCHDOG, str(os.getpid()), str(timeout_s), task, *cluster.peers],
                                stdin=subprocess.PIPE, text=True)
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    barrier(strategy)
    watchdog.stdin.write("joined\n")
    watchdog.stdin.close()
    watchdog.wait()
    return strategy


def barrier(strategy: tf.distribute.Strategy) -> None:
    """Returns when every replica of every worker has reached it (an all-reduce of ones)."""
    @tf.function
    def ones():
        return strategy.run(lambda: tf.ones([]))

    total = strategy.reduce(tf.distribute.ReduceOp.SUM, ones(), axis=None)
    if int(total) != strategy.num_replicas_in_sync:
        raise DistributionError(f"barrier: {int(total)} replicas answered, expected {strategy.num_replicas_in_sync}")


def check_files_cover_workers(files: list[str], placement: Placement) -> None:
    """File-level sharding needs at least one Examples file per worker."""
    if placement.num_workers > 1 and len(files) < placement.num_workers:
        raise DistributionError(
            f"{len(files)} training Examples file(s) for {placement.num_workers} workers: each worker reads whole "
            f"files; export with export.num_shards >= {placement.num_workers}")


def check_global_batch(global_batch_size: int, strategy: tf.distribute.Strategy) -> None:
    replicas = strategy.num_replicas_in_sync
    if global_batch_size % replicas:
        raise DistributionError(f"trainer.global_batch_size={global_batch_size} does not divide among {replicas} "
                                f"replicas; make it a multiple of {replicas}")


def worker_dir(path: str, placement: Placement) -> str:
    """`path` on the chief; a temporary folder beside it on other workers (remove it with `remove_worker_dir`)."""
    if placement.is_chief:
        return path
    parent, name = os.path.split(path.rstrip("/"))
    return os.path.join(parent, f".workertemp_{placement.worker_index}", name)


def remove_worker_dir(path: str, placement: Placement) -> None:
    if placement.is_chief:
        return
    temporary = os.path.dirname(worker_dir(path, placement))
    if tf.io.gfile.exists(temporary):
        tf.io.gfile.rmtree(temporary)


def free_ports(count: int) -> list[int]:
    """Ports free on loopback now (bound to port 0, then released): for clusters of processes on one machine."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports
