"""A supervisor (server/workers.py) over stand-in workers, run as a script by
test_worker_supervisor.py: `python -m tests.unit.supervised_workers <behaviour>`.

Behaviours: `never-serves` (every worker exits with 3 at once), `dies-young` (worker 1
serves, then slot 2's first two workers exit with 5 soon after starting, and the third
stays). A worker that serves runs until SIGTERM.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from cliproxy.server.workers import Supervisor, WorkerLaunch, listening_sockets

FLAG_DIR = os.environ.get("SUPERVISED_FLAGS", ".")


def serve_until_told(launch: WorkerLaunch) -> int:
    launch.ready.set()
    print(f"serving {launch.index} pid={os.getpid()}", flush=True)
    while True:  # until SIGTERM, which (left at its default) ends the process
        time.sleep(1)


def dies_young(launch: WorkerLaunch) -> int:
    if launch.index == 1:
        return serve_until_told(launch)
    # Counted in a file: each start is a new process.
    flag = os.path.join(FLAG_DIR, f"starts-{launch.index}")
    with open(flag, "a") as starts:
        starts.write("x")
    with open(flag) as starts:
        count = len(starts.read())
    if count <= 2:
        time.sleep(0.1)
        return 5
    return serve_until_told(launch)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    behaviour = sys.argv[1]
    sockets = listening_sockets("127.0.0.1", 0, 1, backlog=8)
    port = sockets[0].getsockname()[1]
    sockets = [sockets[0], *listening_sockets("127.0.0.1", port, 1, backlog=8)]
    worker = {"never-serves": lambda launch: 3, "dies-young": dies_young}[behaviour]
    return Supervisor(2, sockets, worker).run()


if __name__ == "__main__":
    sys.exit(main())
