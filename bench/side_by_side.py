"""Two proxies loaded at the same time on the one proxy core: the ratio of their throughputs.

The ledger target compares cliproxy with its recording on and off. Run one after the other,
even alternating five times, the two runs see different machines: on a shared host the same
proxy's throughput moves by a quarter from one five-second run to the next (the same build,
config and core), which drowns a difference of a few percent. Loaded together, both proxies
take their turns on the same core through the same seconds, so whatever the host does, it
does to both; the kernel shares the core fairly between two busy processes, and each one's
throughput is then what its work per request allows. With the same build on both sides this
measures 98-103 % round after round (docs/benchmark.md), where alternating runs spread from
74 to 137 %.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable


def median(values: list[float]) -> float:
    ranked = sorted(values)
    middle = len(ranked) // 2
    return ranked[middle] if len(ranked) % 2 else (ranked[middle - 1] + ranked[middle]) / 2


def run_side_by_side(
    pids: tuple[int, int],
    commands: tuple[list[str], list[str]],
    rounds: int,
    duration: float,
    settle: Callable[[], None],
    cpu_seconds: Callable[[int], float],
    parse: Callable[[bytes, bytes], dict[str, object]],
) -> dict[str, object]:
    """``rounds`` runs of the two load generators ``commands`` at once, against the proxies
    ``pids``; the first's throughput as a percentage of the second's in each round, their
    median, and each side's CPU per request."""
    ratios: list[float] = []
    rates: tuple[list[float], list[float]] = ([], [])
    cpu_per_request: tuple[list[float], list[float]] = ([], [])
    errors = 0
    for _ in range(rounds):
        settle()
        before = [cpu_seconds(pid) for pid in pids]
        loads = [
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for command in commands
        ]
        deadline = time.monotonic() + duration + 120
        outputs = []
        for load in loads:
            try:
                outputs.append(load.communicate(timeout=max(1.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                load.kill()
                outputs.append(load.communicate())
        results = [parse(out, err) for out, err in outputs]
        spent = [cpu_seconds(pid) - start for pid, start in zip(pids, before, strict=True)]
        errors += sum(int(result.get("errors") or 0) for result in results)  # type: ignore[call-overload]
        rps = [float(result.get("rps") or 0.0) for result in results]  # type: ignore[arg-type]
        if not all(rps):
            continue
        ratios.append(rps[0] / rps[1] * 100)
        for side in (0, 1):
            rates[side].append(rps[side])
            done = int(results[side].get("completed") or 0)  # type: ignore[call-overload]
            if done:
                cpu_per_request[side].append(spent[side] / done * 1e6)
    summary: dict[str, object] = {
        "rounds": len(ratios),
        "errors": errors,
        "ratios_pct": [round(ratio, 1) for ratio in ratios],
        "rps": [[round(rate, 1) for rate in side] for side in rates],
    }
    if ratios:
        summary["ratio_pct"] = round(median(ratios), 2)
    if all(cpu_per_request):
        summary["cpu_us_per_request"] = [round(median(side), 1) for side in cpu_per_request]
    return summary
