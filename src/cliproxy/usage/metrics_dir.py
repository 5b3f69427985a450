"""Where the metrics of several worker processes meet (prometheus-client's multiprocess mode).

Kept apart from usage/metrics.py because it must run before prometheus-client is imported:
the library picks its value class (in memory, or in a per-process file) at import.
"""

from __future__ import annotations

import os
import shutil
import tempfile

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus-client at its import


def share_between_processes() -> str:
    """Put this process's metrics, and its children's, in files under a new directory, so
    that a scrape of any of them sums them all; returns the directory. An inherited directory
    is not reused: its files would add an earlier run's counts."""
    directory = tempfile.mkdtemp(prefix="cliproxy-metrics-")
    os.environ[MULTIPROCESS_DIR] = directory
    return directory


def stop_sharing(directory: str) -> None:
    os.environ.pop(MULTIPROCESS_DIR, None)
    shutil.rmtree(directory, ignore_errors=True)


def shared_between_processes() -> bool:
    return bool(os.environ.get(MULTIPROCESS_DIR))
