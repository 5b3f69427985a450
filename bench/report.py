"""Turning the runner's raw numbers into bench/results.md: the machine, the table, the targets."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from side_by_side import median

ROOT = Path(__file__).resolve().parent.parent
Results = dict[str, dict[str, dict[str, Any]]]  # target -> "mode|case" -> loadgen numbers


def machine_description(litellm_version: str | None) -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    rev = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "src"], capture_output=True, text=True
    ).stdout.strip()
    lines = [
        f"- Date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
        f"- CPU: {cpu}, {os.cpu_count()} cores; RAM {mem_kb // 1024} MB; "
        f"Linux {platform.release()}; Python {platform.python_version()}",
        f"- cliproxy: git {rev or '?'}{' (with uncommitted changes in src/)' if dirty else ''}",
        f"- LiteLLM: {litellm_version or 'not run'}",
    ]
    return "\n".join(lines)


def _num(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _diff(a: Any, b: Any) -> float | None:
    if a is None or b is None or a != a or b != b:
        return None
    return float(a) - float(b)


def _per_chunk_us(results: Results, target: str, mode: str, chunks: int) -> float | None:
    """Proxy CPU per streamed chunk, from saturated runs at concurrency 16: (time per stream -
    time per JSON call) / chunks. Both runs keep the proxy's core busy, so 1/throughput is the
    proxy's cost per request."""
    numbers = results.get(target, {})
    stream = numbers.get(f"{mode}|stream c=16", {}).get("rps")
    plain = numbers.get(f"{mode}|json c=16", {}).get("rps")
    if not stream or not plain:
        return None
    return (1 / stream - 1 / plain) / chunks * 1e6


def render_results(
    results: Results,
    cases: list[str],
    modes: list[str],
    machine: str,
    notes: list[str],
    duration: float,
    chunks: int,
) -> str:
    out = [
        "# Benchmark results",
        "",
        "Written by `make bench` (bench/run.py). Proxy under test pinned to core 0; upstream",
        "simulator, load generator (bench/loadgen.py, asyncio + uvloop + httptools) and runner",
        f"on core 1. Each timed run lasts {duration:g} s after 1 s of warm-up, except the idle",
        "streams (1,000 connections, one 50-chunk stream each, one chunk every 200 ms).",
        '"Added" = proxied percentile minus the direct percentile of the same case. TTFB =',
        "time to the first body byte (for a stream, its first token). Peak RSS is sampled every",
        "100 ms during the run. CPU = the proxy process tree's user + system time over the whole",
        "load run (/proc/<pid>/stat), as a share of one core and divided by every reply (and",
        "chunk: 50 per stream) completed in it; it does not depend on what else runs on the",
        "machine, unlike throughput. Paced streams: one chunk every 10 ms (0.5 s per stream).",
        "",
        machine,
        "",
        "| Mode | Case | Target | req/s | p50 ms | p99 ms | added p50 | added p99 | TTFB p50 "
        "| TTFB p99 | added TTFB p50 | added TTFB p99 | CPU % core | CPU µs/req | CPU µs/chunk "
        "| peak RSS MB | ok / errors | cliproxy ÷ LiteLLM |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for mode in modes:
        for case in cases:
            key = f"{mode}|{case}"
            direct = results.get("direct", {}).get(key, {})
            for target in TARGET_ORDER:
                row = results.get(target, {}).get(key)
                if row is None:
                    continue
                ratio = ""
                other = results.get("litellm", {}).get(key)
                if target == "cliproxy" and other:
                    if case.startswith("1000"):
                        a, b = row.get("peak_rss_mb"), other.get("peak_rss_mb")
                        ratio = f"RSS {a / b:.2f}x" if a and b else ""
                    elif row.get("rps") and other.get("rps"):
                        ratio = f"{row['rps'] / other['rps']:.1f}x req/s"
                added = target != "direct"
                out.append(
                    f"| {mode} | {case} | {target} | {_num(row.get('rps'), 1)} "
                    f"| {_num(row.get('p50_ms'))} | {_num(row.get('p99_ms'))} "
                    f"| {_num(_diff(row.get('p50_ms'), direct.get('p50_ms'))) if added else ''} "
                    f"| {_num(_diff(row.get('p99_ms'), direct.get('p99_ms'))) if added else ''} "
                    f"| {_num(row.get('ttfb_p50_ms'))} | {_num(row.get('ttfb_p99_ms'))} "
                    f"| {_num(_diff(row.get('ttfb_p50_ms'), direct.get('ttfb_p50_ms'))) if added else ''} "
                    f"| {_num(_diff(row.get('ttfb_p99_ms'), direct.get('ttfb_p99_ms'))) if added else ''} "
                    f"| {_num(row.get('cpu_core_pct'), 1) if added else ''} "
                    f"| {_num(row.get('cpu_us_per_request'), 1) if added else ''} "
                    f"| {_num(row.get('cpu_us_per_chunk'), 1) if added else ''} "
                    f"| {_num(row.get('peak_rss_mb'), 1) if added else ''} "
                    f"| {row.get('requests')} / {row.get('errors')} | {ratio} |"
                )
    out += ["", "## Targets (cliproxy)", "", "| Target | Measured | Met |", "|---|---|---|"]
    out += _targets(results, chunks)
    if notes:
        out += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    return "\n".join(out) + "\n"


def _row_adder(rows: list[str]) -> Callable[..., None]:
    """add(label, value, limit, unit, at_most=True): one target row, met or not (or not
    measured when the value is None), appended to ``rows``."""

    def add(label: str, value: float | None, limit: float, unit: str, at_most: bool = True) -> None:
        if value is None:
            rows.append(f"| {label} | not measured | - |")
            return
        met = value <= limit if at_most else value >= limit
        rows.append(f"| {label} | {value:.2f} {unit} | {'yes' if met else 'NO'} |")

    return add


def paired_percent(on: dict[str, Any], off: dict[str, Any]) -> float | None:
    """``on``'s throughput as a percentage of ``off``'s: the median of the per-round ratios when
    both ran the same alternating rounds (each pair ran back to back, so a host that drifts
    between rounds moves both alike), else the ratio of the two medians."""
    runs_on, runs_off = on.get("runs_rps") or [], off.get("runs_rps") or []
    if runs_on and len(runs_on) == len(runs_off) and all(runs_on) and all(runs_off):
        return median([a / b * 100 for a, b in zip(runs_on, runs_off, strict=True)])
    rate_on, rate_off = on.get("rps"), off.get("rps")
    return rate_on / rate_off * 100 if rate_on and rate_off else None


def _ledger_row(mode: str, proxy: dict[str, Any], bare: dict[str, Any]) -> str:
    """The ledger target: decided by the two loaded side by side (bench/side_by_side.py), with
    the runs one after the other beside it; either alone when only it was measured."""
    label = f"{mode} c=64 with ledger + metrics on ≥ 90% of them off"
    key = f"{mode}|json c=64"
    together = proxy.get(f"{mode}|ledger side by side", {})
    apart = paired_percent(proxy.get(key, {}), bare.get(key, {}))
    value = together.get("ratio_pct")
    if value is not None:
        how = f"{together.get('rounds')} rounds side by side"
        cpu = together.get("cpu_us_per_request")
        if cpu:
            how += f", CPU per request {cpu[0]:.0f} µs on, {cpu[1]:.0f} µs off"
        if apart is not None:
            how += f"; in turns {apart:.1f} %"
    elif apart is not None:
        value, how = apart, "median of the paired runs in turns"
    else:
        return f"| {label} | not measured | - |"
    return f"| {label} | {value:.2f} % ({how}) | {'yes' if value >= 90 else 'NO'} |"


TARGET_ORDER = ("direct", "cliproxy", "cliproxy-bare", "cliproxy-redis", "cliproxy-2w", "litellm")


def _scale_targets(results: Results) -> list[str]:
    """Issue 21's targets for one worker, two workers and the burst (this 2-core machine)."""
    proxy, direct = results.get("cliproxy", {}), results.get("direct", {})
    litellm, two = results.get("litellm", {}), results.get("cliproxy-2w", {})
    rows: list[str] = []
    add = _row_adder(rows)

    c64 = "pass-through|json c=64"
    one = results.get("cliproxy-bare", {}).get(c64, {}).get("rps")
    add("one worker, pass-through c=64 (ledger off) ≥ 4,000 req/s", one, 4000, "req/s", False)
    theirs = litellm.get(c64, {}).get("rps")
    add(
        "one worker, pass-through c=64 (ledger off) ≥ 50x LiteLLM",
        one / theirs if one and theirs else None,
        50,
        "x",
        False,
    )
    c1 = "pass-through|json c=1"
    for stat, limit in (("p50_ms", 0.3), ("p99_ms", 1.0)):
        add(
            f"one worker, pass-through c=1 added {stat[:3]} ≤ {limit:g} ms",
            _diff(proxy.get(c1, {}).get(stat), direct.get(c1, {}).get(stat)),
            limit,
            "ms",
            True,
        )
    burst = "pass-through|1000 idle streams"
    add(
        "1,000-stream burst added TTFB p50 ≤ 50 ms",
        _diff(proxy.get(burst, {}).get("ttfb_p50_ms"), direct.get(burst, {}).get("ttfb_p50_ms")),
        50,
        "ms",
        True,
    )
    mine, both = proxy.get(c64, {}).get("rps"), two.get(c64, {}).get("rps")
    add(
        "two workers (both cores, tools on core 1 too) ≥ 1.8x one worker, pass-through c=64",
        both / mine if both and mine else None,
        1.8,
        "x",
        False,
    )
    return rows


def _targets(results: Results, chunks: int) -> list[str]:
    proxy = results.get("cliproxy", {})
    direct = results.get("direct", {})
    litellm = results.get("litellm", {})
    rows: list[str] = []
    add = _row_adder(rows)

    c1 = "pass-through|json c=1"
    add(
        "pass-through c=1 added p50 ≤ 0.5 ms",
        _diff(proxy.get(c1, {}).get("p50_ms"), direct.get(c1, {}).get("p50_ms")),
        0.5,
        "ms",
    )
    add(
        "pass-through c=1 added p99 ≤ 1.5 ms",
        _diff(proxy.get(c1, {}).get("p99_ms"), direct.get(c1, {}).get("p99_ms")),
        1.5,
        "ms",
    )
    s1 = "pass-through|stream c=1"
    add(
        "pass-through stream added TTFB (p50) ≤ 1 ms",
        _diff(proxy.get(s1, {}).get("ttfb_p50_ms"), direct.get(s1, {}).get("ttfb_p50_ms")),
        1.0,
        "ms",
    )
    for mode in ("pass-through", "translated"):
        key = f"{mode}|json c=64"
        mine, theirs = proxy.get(key, {}).get("rps"), litellm.get(key, {}).get("rps")
        add(
            f"{mode} c=64 throughput ≥ 5x LiteLLM",
            mine / theirs if mine and theirs else None,
            5.0,
            "x",
            at_most=False,
        )
    bare = results.get("cliproxy-bare", {})
    for mode in ("pass-through", "translated"):
        rows.append(_ledger_row(mode, proxy, bare))
    shared = results.get("cliproxy-redis", {})
    add(
        "pass-through c=64 with the pool state in Redis ≥ 85% of local state",
        paired_percent(
            shared.get("pass-through|json c=64", {}), proxy.get("pass-through|json c=64", {})
        ),
        85.0,
        "% (median of the paired runs)",
        at_most=False,
    )
    soak = proxy.get("pass-through|soak", {})
    per_request = soak.get("bytes_per_request")
    if per_request is None:
        rows.append("| memory flat over 100k requests (≤ 100 bytes each) | not measured | - |")
    else:
        rows.append(
            f"| memory flat over 100k requests (≤ 100 bytes each) | {soak.get('requests')} "
            f"requests, RSS {soak.get('rss_before_mb')} → {soak.get('rss_after_mb')} MB, "
            f"{per_request:.1f} bytes each | {'yes' if per_request <= 100 else 'NO'} |"
        )
    passthrough = _per_chunk_us(results, "cliproxy", "pass-through", chunks)
    translated = _per_chunk_us(results, "cliproxy", "translated", chunks)
    if passthrough is not None and translated is not None:
        rows.append(
            f"| per-chunk cost: pass-through {passthrough:.1f} µs, translated "
            f"{translated:.1f} µs | {translated / passthrough:.2f}x "
            f"| {'yes' if translated <= 1.5 * passthrough else 'NO'} (≤ 1.5x) |"
        )
    rows += _paced_targets(proxy, direct)
    rows += _scale_targets(results)
    for mode in ("pass-through", "translated"):
        idle = proxy.get(f"{mode}|1000 idle streams", {})
        rss, ok, errors = idle.get("peak_rss_mb"), idle.get("requests"), idle.get("errors")
        met = rss is not None and rss < 300 and ok == 1000 and errors == 0
        rows.append(
            f"| {mode}: 1,000 open streams < 300 MB, none dropped "
            f"| {_num(rss, 1)} MB, {ok} complete, {errors} failed | {'yes' if met else 'NO'} |"
        )
    return rows


def _paced_targets(
    proxy: dict[str, dict[str, Any]], direct: dict[str, dict[str, Any]]
) -> list[str]:
    """Streams at an LLM's pace: each keeps its ideal rate (a stream is 0.5 s of chunks, so a
    closed loop of N makes N / 0.5 s streams/s; 95 % of that allows for each request's own
    round trip), the 64-stream case on at most a quarter of one core."""
    rows: list[str] = []
    for mode in ("pass-through", "translated"):
        for case, core_limit in (("64 paced streams", 25.0), ("512 paced streams", None)):
            key = f"{mode}|{case}"
            row, baseline = proxy.get(key), direct.get(key, {})
            streams = case.split()[0]
            label = f"{mode}: {streams} paced streams keep their ideal rate"
            if core_limit is not None:
                label += f" at ≤ {core_limit:g} % of a core"
            if not row or not row.get("ideal_rps"):
                rows.append(f"| {label} | not measured | - |")
                continue
            ideal, rps, share = row["ideal_rps"], row.get("rps") or 0.0, row.get("cpu_core_pct")
            met = rps >= 0.95 * ideal and not row.get("errors")
            measured = f"{rps:.1f} of {ideal:g} streams/s (direct {_num(baseline.get('rps'), 1)})"
            if core_limit is not None:
                met = met and share is not None and share <= core_limit
                measured += f", {_num(share, 1)} % of a core"
            measured += f", {_num(row.get('cpu_us_per_chunk'), 1)} µs CPU per chunk"
            rows.append(f"| {label} | {measured} | {'yes' if met else 'NO'} |")
    return rows
