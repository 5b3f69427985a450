"""The workers' supervisor (server/workers.py) over stand-in workers that fail on purpose, run
as a real process (tests/unit/supervised_workers.py): what the e2e tests of `workers: N`
cannot make a real worker do."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def supervise(behaviour: str, tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.unit.supervised_workers", behaviour],
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "SUPERVISED_FLAGS": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def read_until(process: subprocess.Popen[str], wanted: str, seconds: float = 20) -> str:
    """The output up to and including the first line holding ``wanted``."""
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if wanted in line:
            return "".join(seen)
    raise AssertionError(f"never printed {wanted!r}:\n{''.join(seen)}")


def test_a_first_worker_that_never_serves_ends_the_supervisor(tmp_path: Path) -> None:
    process = supervise("never-serves", tmp_path)
    output, _ = process.communicate(timeout=20)
    assert process.returncode == 1, output
    assert "exited with status 3 before it served; not starting the others" in output
    assert "worker 2 started" not in output


def test_a_worker_dying_young_is_restarted_after_doubling_pauses(tmp_path: Path) -> None:
    process = supervise("dies-young", tmp_path)
    try:
        output = read_until(process, "serving 2")
        exits = [line for line in output.splitlines() if line.startswith("worker 2 (pid")]
        assert len(exits) == 2, output
        assert "exited with status 5" in exits[0] and "restarting it in 0.5 s" in exits[0]
        assert "restarting it in 1.0 s" in exits[1]
        assert "worker 1 (pid" not in output  # the serving worker was left alone
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=20)
        # The supervisor says so once the process runs, and the worker may print first.
        assert (output + rest).count("worker 2 started again") == 2, output + rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, rest
    assert "stopping 2 worker(s)" in rest and "all workers stopped" in rest
