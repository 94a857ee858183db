"""A watchdog process for joining a multi-worker cluster (no TensorFlow import: it starts in well under a second).

TensorFlow blocks, holding Python's GIL, while it waits for absent workers, so no thread of the Trainer's own
process can end the wait. The Trainer starts this script with its pid, the timeout and the peer addresses,
and writes a line to its stdin once the cluster is together. If no line comes in time, the script prints
which peers do not answer and ends the Trainer (SIGTERM, then SIGKILL).

    python cluster_watch.py PID TIMEOUT_S THIS_TASK PEER [PEER ...]
"""
import os
import select
import signal
import socket
import sys
import time


def accepts(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=2):
            return True
    except OSError:
        return False


def main(pid: int, timeout_s: float, task: str, peers: list[str]) -> int:
    ready, _, _ = select.select([sys.stdin], [], [], timeout_s)
    if ready:
        return 0  # joined (a line) or the Trainer ended (end of file)
    missing = [address for address in peers if not accepts(address)] or peers
    print(f"trainer: the multi-worker cluster did not come together within {timeout_s:g} s "
          f"(trainer.worker_timeout_s): no answer from {', '.join(missing)}; this task is {task}",
          file=sys.stderr, flush=True)
    os.kill(pid, signal.SIGTERM)
    time.sleep(2)  # TensorFlow, blocked in the wait, often ignores SIGTERM
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4:]))
