"""`make bench`: direct vs cliproxy vs LiteLLM's proxy against one fast upstream simulator.

Placement on a 2-core machine: the proxy under test is pinned to core 0; the upstream simulator
(bench/upstream.py), the load generator (bench/loadgen.py) and this runner share core 1. Every
process listens on 127.0.0.1 only, and every load run is bounded in time (or, for the idle
streams, in count). Results go to bench/results.md (and the raw numbers to build/bench/).

    python bench/run.py [--duration S] [--skip-litellm] [--only cliproxy,direct]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import machine_description, render_results
from side_by_side import run_side_by_side
from upstream import PACED_GAP

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "bench"
PY = sys.executable
PROXY_CORE = "0"
TOOLS_CORE = "1"
CHUNKS = 50

OPENAI_BODY = {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 64}
ANTHROPIC_BODY = {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 64}


@dataclass
class Case:
    name: str
    stream: bool
    concurrency: int
    once: bool = False  # each connection sends exactly one request (the idle streams)
    slow: bool = False
    paced: bool = False  # one chunk every 10 ms, as an LLM sends them (bench/upstream.py)

    @property
    def model_suffix(self) -> str:
        return "-slow" if self.slow else "-paced" if self.paced else ""


CASES = [
    Case("json c=1", False, 1),
    Case("json c=16", False, 16),
    Case("json c=64", False, 64),
    Case("stream c=1", True, 1),
    Case("stream c=16", True, 16),
    Case("1000 idle streams", True, 1000, once=True, slow=True),
    # 50 chunks 10 ms apart: a stream lasts 0.5 s, so 64 of them ideally make 128 streams/s
    # (6,400 chunks/s) and 512 make 1,024 streams/s; what they cost is the proxy's CPU.
    Case("64 paced streams", True, 64, paced=True),
    Case("512 paced streams", True, 512, paced=True),
]

# mode -> the direct request to the upstream (path, model, body); clients of a proxy always
# speak OpenAI Chat, so "translated" means OpenAI client -> Anthropic upstream.
MODES = {
    "pass-through": ("/v1/chat/completions", "gpt-bench", OPENAI_BODY),
    "translated": ("/v1/messages", "claude-bench", ANTHROPIC_BODY),
}
CLIENT_MODEL = {"pass-through": "bench-openai", "translated": "bench-claude"}
# "cliproxy-bare" is cliproxy with the usage ledger and the metrics turned off: it runs only
# this case, to show what recording every request costs at full load.
BARE_CASE = "json c=64"
SIDE_BY_SIDE = "ledger side by side"  # BARE_CASE on cliproxy and cliproxy-bare at once
SIDE_BY_SIDE_ROUNDS = 9  # its rounds still spread by a few percent: their median decides
# "cliproxy-redis" is cliproxy with its pool state in Redis (state-store), run beside cliproxy
# in the same case: what sharing the state costs. Skipped when no Redis answers.
REDIS_URL = os.environ.get("CLIPROXY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
# "cliproxy-2w" is cliproxy with `workers: 2`, free to use both cores (the load generator and
# the upstream simulator still run on core 1), run beside cliproxy in the same case.
TWO_WORKERS_CORES = "0,1"
BESIDE_CLIPROXY = ("cliproxy-bare", "cliproxy-redis", "cliproxy-2w")
# Alternating runs per target in that case: single runs on this machine differ by 15 %.
ROUNDS = 5
REDIS_PREFIX = f"cliproxy-bench-{os.getpid()}:"
SOAK_REQUESTS = 100_000  # the memory soak: RSS before and after this many requests


@dataclass
class Target:
    name: str
    port: int
    process: subprocess.Popen[bytes] | None = None
    results: dict[tuple[str, str], dict[str, object]] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(cmd: list[str], log_name: str, core: str, env: dict[str, str] | None = None):
    log = open(BUILD / log_name, "wb")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(
        ["taskset", "-c", core, *cmd],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        start_new_session=True,  # its own process group, so stop() takes its children too
    )


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_ready(port: int, path: str, body: dict[str, object], process, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    data = orjson.dumps(body)
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}",
            data=data,
            headers={"content-type": "application/json", "authorization": "Bearer sk-bench"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as reply:
                if reply.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def _tree(pid: int) -> list[int]:
    """A process and all its descendants (LiteLLM may fork workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def tree_rss_kb(pid: int) -> int:
    total = 0
    for current in _tree(pid):
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process tree so far (/proc/<pid>/stat utime and stime, plus
    what its exited children left in cutime and cstime)."""
    ticks = 0
    for current in _tree(pid):
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / CLOCK_TICKS


def settle(targets: list[Target], limit: float = 60.0) -> None:
    """Wait (up to ``limit`` seconds) until no proxy under test is still busy: one that fell
    behind keeps working on its backlog after its load generator gave up (LiteLLM does, for
    tens of seconds at 64 paced streams), on the core the next target runs on."""
    pids = [t.process.pid for t in targets if t.process is not None and t.process.poll() is None]
    deadline = time.monotonic() + limit
    while pids and time.monotonic() < deadline:
        before = sum(tree_cpu_seconds(pid) for pid in pids)
        time.sleep(0.5)
        if sum(tree_cpu_seconds(pid) for pid in pids) - before < 0.05:  # under 10 % of a core
            return


def _cpu_numbers(cpu: float, result: dict[str, object], case: Case) -> dict[str, object]:
    """The proxy's CPU over the whole load run, as a share of one core and per request (and
    per chunk for streams), against every reply completed in that run (warm-up included)."""
    done = int(result.get("completed") or 0)  # type: ignore[call-overload]
    wall = float(result.get("wall_seconds") or 0.0)  # type: ignore[arg-type]
    numbers: dict[str, object] = {"cpu_seconds": round(cpu, 3)}
    if wall:
        numbers["cpu_core_pct"] = round(cpu / wall * 100, 1)
    if done:
        numbers["cpu_us_per_request"] = round(cpu / done * 1e6, 1)
        if case.stream:
            numbers["cpu_us_per_chunk"] = round(cpu / (done * CHUNKS) * 1e6, 1)
    return numbers


def loadgen_command(
    target: Target, mode: str, case: Case, upstream_port: int, duration: float
) -> list[str]:
    path, model, body = MODES[mode]
    anthropic_reply = target.name == "direct" and mode == "translated"
    if target.name != "direct":
        port, path, model, body = (
            target.port,
            "/v1/chat/completions",
            CLIENT_MODEL[mode],
            OPENAI_BODY,
        )
    else:
        port = upstream_port
    # A reply only counts when it is complete: the protocol's own end marker must be in it.
    if case.stream:
        marker = "message_stop" if anthropic_reply else "[DONE]"
    else:
        marker = "end_turn" if anthropic_reply else '"stop"'
    request_body = {**body, "model": model + case.model_suffix, "stream": case.stream}
    cmd = [
        "taskset", "-c", TOOLS_CORE, PY, str(ROOT / "bench" / "loadgen.py"),
        "--url", f"http://127.0.0.1:{port}{path}",
        "--body", orjson.dumps(request_body).decode(),
        "--header", "authorization: Bearer sk-bench",
        "--header", "anthropic-version: 2023-06-01",
        "--concurrency", str(case.concurrency),
        "--duration", str(duration),
        "--expect", marker,
    ]  # fmt: skip
    if case.once:
        cmd.append("--once")
    return cmd


def loadgen_result(out: bytes, err: bytes) -> dict[str, object]:
    try:
        result: dict[str, object] = orjson.loads(out.strip().splitlines()[-1])
    except (orjson.JSONDecodeError, IndexError):
        result = {"requests": 0, "errors": -1, "first_error": err.decode()[-300:]}
    return result


def run_load(
    target: Target, mode: str, case: Case, upstream_port: int, duration: float
) -> dict[str, object]:
    cmd = loadgen_command(target, mode, case, upstream_port, duration)
    watched = target.process.pid if target.process is not None else None
    cpu_before = tree_cpu_seconds(watched) if watched is not None else 0.0
    loadgen = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    limit = time.monotonic() + duration + 120
    while loadgen.poll() is None:
        if watched is not None:
            peak = max(peak, tree_rss_kb(watched))
        if time.monotonic() > limit:
            loadgen.kill()
        time.sleep(0.1)
    out, err = loadgen.communicate()
    cpu = tree_cpu_seconds(watched) - cpu_before if watched is not None else None
    result = loadgen_result(out, err)
    result["peak_rss_mb"] = round(peak / 1024, 1) if peak else None
    if cpu is not None:
        result.update(_cpu_numbers(cpu, result, case))
    if case.paced:
        result["ideal_rps"] = round(case.concurrency / (CHUNKS * PACED_GAP), 1)
    return result


def run_alternating(
    targets: list[Target], mode: str, case: Case, upstream_port: int, duration: float
) -> list[dict[str, object]]:
    """The same case on several targets, alternating ROUNDS times, each target's median run: a
    shared machine drifts by more than the difference being measured."""
    runs: list[list[dict[str, object]]] = [[] for _ in targets]
    for _ in range(ROUNDS):
        for index, target in enumerate(targets):
            settle(targets)  # the one before may still be finishing its work, on this core
            runs[index].append(run_load(target, mode, case, upstream_port, duration))

    def median(results: list[dict[str, object]]) -> dict[str, object]:
        ranked = sorted(results, key=lambda r: float(r.get("rps") or 0.0))  # type: ignore[arg-type]
        return {**ranked[len(ranked) // 2], "runs_rps": [r.get("rps") for r in results]}

    return [median(each) for each in runs]


def ledger_side_by_side(
    on: Target,
    off: Target,
    mode: str,
    case: Case,
    upstream_port: int,
    duration: float,
    live: list[Target],
) -> dict[str, object]:
    """cliproxy with its ledger and metrics on, and with them off, loaded at the same time on
    the proxy core (bench/side_by_side.py): what recording costs, undisturbed by the host."""
    assert on.process is not None and off.process is not None
    commands = (
        loadgen_command(on, mode, case, upstream_port, duration),
        loadgen_command(off, mode, case, upstream_port, duration),
    )
    return run_side_by_side(
        (on.process.pid, off.process.pid),
        commands,
        SIDE_BY_SIDE_ROUNDS,
        duration,
        lambda: settle(live),
        tree_cpu_seconds,
        loadgen_result,
    )


def redis_problem(url: str) -> str | None:
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except Exception as exc:  # the package missing, nothing listening, refused
        return f"no Redis at {url} ({exc})"
    return None


def forget_redis_keys(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    doomed = list(client.scan_iter(match=REDIS_PREFIX + "*", count=500))
    if doomed:
        client.delete(*doomed)


def memory_soak(target: Target, upstream_port: int) -> dict[str, object]:
    """RSS before and after SOAK_REQUESTS pass-through requests at concurrency 64, ledger and
    metrics on: what each request leaves behind once the process is warm."""
    assert target.process is not None
    rate = target.results.get(("pass-through", BARE_CASE), {}).get("rps") or 1000.0
    duration = max(10.0, SOAK_REQUESTS / float(rate) * 1.2)  # type: ignore[arg-type]
    time.sleep(2.0)  # let the ledger write what the earlier runs queued
    before = tree_rss_kb(target.process.pid)
    case = Case("soak", False, 64)
    result = run_load(target, "pass-through", case, upstream_port, duration)
    time.sleep(2.0)
    after = tree_rss_kb(target.process.pid)
    done = int(result.get("requests") or 0)  # type: ignore[call-overload]
    return {
        "requests": done,
        "errors": result.get("errors"),
        "rss_before_mb": round(before / 1024, 1),
        "rss_after_mb": round(after / 1024, 1),
        "bytes_per_request": round((after - before) * 1024 / done, 1) if done else None,
    }


def install_litellm(venv: Path) -> str | None:
    """Install litellm[proxy] into its own venv; None when it worked, else why not."""
    binary = venv / "bin" / "litellm"
    if binary.exists():
        return None
    print(f"installing litellm[proxy] into {venv} ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", "litellm[proxy]"],
            check=True,
            timeout=1200,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        return f"pip install 'litellm[proxy]' failed: {exc}"
    return None if binary.exists() else "litellm installed without its CLI"


def cliproxy_config(
    upstream: int,
    port: int,
    recording: bool = True,
    redis_url: str = "",
    auth: str = "",
    workers: int = 1,
) -> str:
    switches = "" if recording else "usage-statistics-enabled: false\nmetrics-enabled: false\n"
    if workers > 1:
        switches += f"workers: {workers}\n"
    if redis_url:
        switches += f'state-store: {{redis-url: "{redis_url}", key-prefix: "{REDIS_PREFIX}"}}\n'
    return f"""host: 127.0.0.1
port: {port}
auth-dir: {BUILD / (auth or ("auth" if recording else "auth-bare"))}
demo: false
{switches}api-keys: [sk-bench]  # both proxies check the client's key, as LiteLLM's master_key does
openai-compatibility:
  - name: bench
    base-url: http://127.0.0.1:{upstream}/v1
    api-key-entries:
      - api-key: sk-bench
    models:
      - {{name: gpt-bench, alias: bench-openai}}
      - {{name: gpt-bench-slow, alias: bench-openai-slow}}
      - {{name: gpt-bench-paced, alias: bench-openai-paced}}
claude-api-key:
  - api-key: sk-bench
    base-url: http://127.0.0.1:{upstream}
    models:
      - {{name: claude-bench, alias: bench-claude}}
      - {{name: claude-bench-slow, alias: bench-claude-slow}}
      - {{name: claude-bench-paced, alias: bench-claude-paced}}
"""


def litellm_config(upstream: int) -> str:
    entries = []
    for alias, model, base in (
        ("bench-openai", "openai/gpt-bench", f"http://127.0.0.1:{upstream}/v1"),
        ("bench-openai-slow", "openai/gpt-bench-slow", f"http://127.0.0.1:{upstream}/v1"),
        ("bench-openai-paced", "openai/gpt-bench-paced", f"http://127.0.0.1:{upstream}/v1"),
        ("bench-claude", "anthropic/claude-bench", f"http://127.0.0.1:{upstream}"),
        ("bench-claude-slow", "anthropic/claude-bench-slow", f"http://127.0.0.1:{upstream}"),
        ("bench-claude-paced", "anthropic/claude-bench-paced", f"http://127.0.0.1:{upstream}"),
    ):
        entries.append(
            f"  - model_name: {alias}\n    litellm_params:\n      model: {model}\n"
            f"      api_base: {base}\n      api_key: sk-bench\n"
        )
    return (
        "model_list:\n" + "".join(entries) + "litellm_settings:\n  telemetry: false\n"
        "  drop_params: true\n  set_verbose: false\n"
        "general_settings:\n  master_key: sk-bench\n"
    )


# Keep LiteLLM offline: bundled model-cost map, no telemetry, no database, quiet logs.
LITELLM_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_TELEMETRY": "False",
    "LITELLM_LOG": "ERROR",
    "DISABLE_SCHEMA_UPDATE": "True",
    "NO_DOCS": "True",
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load run")
    parser.add_argument("--litellm-venv", default=str(ROOT / "build" / "litellm-venv"))
    parser.add_argument("--skip-litellm", action="store_true")
    parser.add_argument("--only", default="direct,cliproxy,litellm")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results.md"))
    parser.add_argument("--cases", default="", help="only these cases (comma-separated names)")
    parser.add_argument("--skip-soak", action="store_true", help="no 100k-request memory soak")
    args = parser.parse_args()
    # This driver polls every target's memory ten times a second: on the tools' core, not on
    # the core whose time the proxy under test is measured by.
    os.sched_setaffinity(0, {int(TOOLS_CORE)})
    BUILD.mkdir(parents=True, exist_ok=True)
    (BUILD / "auth").mkdir(exist_ok=True)
    # Each run starts with an empty usage ledger, so runs compare alike.
    for ledger in BUILD.glob("auth*/usage.sqlite*"):
        ledger.unlink()
    wanted = args.only.split(",")
    notes: list[str] = []

    litellm_problem = None
    if "litellm" in wanted and not args.skip_litellm:
        litellm_problem = install_litellm(Path(args.litellm_venv))
    elif "litellm" in wanted:
        litellm_problem = "skipped (--skip-litellm)"

    upstream_port = free_port()
    upstream = start(
        [PY, str(ROOT / "bench" / "upstream.py"), str(upstream_port)], "upstream.log", TOOLS_CORE
    )
    targets = [Target("direct", upstream_port)]
    try:
        if not wait_ready(upstream_port, "/v1/chat/completions", {"model": "x"}, upstream, 10):
            print("the upstream simulator did not start; see build/bench/upstream.log")
            return 1
        if "cliproxy" in wanted:
            port = free_port()
            # A directory of its own: cliproxy watches its config's directory for hot reloads,
            # and the logs written next to it would otherwise wake that watcher constantly.
            config = BUILD / "cliproxy-config" / "config.yaml"
            config.parent.mkdir(exist_ok=True)
            config.write_text(cliproxy_config(upstream_port, port))
            cliproxy_bin = str(Path(PY).parent / "cliproxy")
            process = start(
                [cliproxy_bin, "serve", "--config", str(config)], "cliproxy.log", PROXY_CORE
            )
            targets.append(Target("cliproxy", port, process))
            bare_port = free_port()
            bare = BUILD / "cliproxy-bare-config" / "config.yaml"
            bare.parent.mkdir(exist_ok=True)
            bare.write_text(cliproxy_config(upstream_port, bare_port, recording=False))
            cmd = [cliproxy_bin, "serve", "--config", str(bare)]
            targets.append(Target("cliproxy-bare", bare_port, start(cmd, "bare.log", PROXY_CORE)))
            problem = redis_problem(REDIS_URL)
            if problem is None:
                shared_port = free_port()
                shared = BUILD / "cliproxy-redis-config" / "config.yaml"
                shared.parent.mkdir(exist_ok=True)
                shared.write_text(
                    cliproxy_config(
                        upstream_port, shared_port, redis_url=REDIS_URL, auth="auth-redis"
                    )
                )
                cmd = [cliproxy_bin, "serve", "--config", str(shared)]
                process = start(cmd, "redis.log", PROXY_CORE)
                targets.append(Target("cliproxy-redis", shared_port, process))
            else:
                notes.append(f"cliproxy with a Redis state store was not run: {problem}")
            two_port = free_port()
            two = BUILD / "cliproxy-2w-config" / "config.yaml"
            two.parent.mkdir(exist_ok=True)
            two.write_text(cliproxy_config(upstream_port, two_port, auth="auth-2w", workers=2))
            cmd = [cliproxy_bin, "serve", "--config", str(two)]
            process = start(cmd, "two-workers.log", TWO_WORKERS_CORES)
            targets.append(Target("cliproxy-2w", two_port, process))
        if "litellm" in wanted and litellm_problem is None:
            port = free_port()
            config = BUILD / "litellm.yaml"
            config.write_text(litellm_config(upstream_port))
            binary = str(Path(args.litellm_venv) / "bin" / "litellm")
            cmd = [binary, "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
                   "--num_workers", "1"]  # fmt: skip
            process = start(cmd, "litellm.log", PROXY_CORE, LITELLM_ENV)
            targets.append(Target("litellm", port, process))
        for target in targets[1:]:
            probe = {**OPENAI_BODY, "model": "bench-openai"}
            timeout = 180 if target.name == "litellm" else 30
            if not wait_ready(target.port, "/v1/chat/completions", probe, target.process, timeout):
                problem = f"{target.name} did not start; see build/bench/{target.name}.log"
                print(problem)
                notes.append(problem)
                if target.name == "litellm":
                    litellm_problem = problem
                stop(target.process)
                target.process = None
        live = [t for t in targets if t.name == "direct" or t.process is not None]
        for mode in MODES:
            for case in CASES:
                if args.cases and case.name not in args.cases.split(","):
                    continue
                besides = [t for t in live if t.name in BESIDE_CLIPROXY]
                for target in live:
                    if target in besides:
                        continue  # run beside cliproxy below, or not at all
                    settle(live)
                    if target.name == "cliproxy" and besides and case.name == BARE_CASE:
                        group = [target, *besides]
                        results = run_alternating(group, mode, case, upstream_port, args.duration)
                        for each, result in zip(group, results, strict=True):
                            each.results[(mode, case.name)] = result
                            print(f"{mode:13} {case.name:18} {each.name:9} {result}", flush=True)
                        bare = next((t for t in besides if t.name == "cliproxy-bare"), None)
                        if bare is not None:
                            result = ledger_side_by_side(
                                target, bare, mode, case, upstream_port, args.duration, live
                            )
                            target.results[(mode, SIDE_BY_SIDE)] = result
                            print(f"{mode:13} {SIDE_BY_SIDE:18} {result}", flush=True)
                        continue
                    if target.name != "direct" or "direct" in wanted:
                        result = run_load(target, mode, case, upstream_port, args.duration)
                        target.results[(mode, case.name)] = result
                        print(
                            f"{mode:13} {case.name:18} {target.name:9} {orjson.dumps(result).decode()}",
                            flush=True,
                        )
        soaked = next((t for t in live if t.name == "cliproxy"), None)
        if soaked is not None and not args.skip_soak:
            result = memory_soak(soaked, upstream_port)
            soaked.results[("pass-through", "soak")] = result
            print(f"memory soak   {orjson.dumps(result).decode()}", flush=True)
    finally:
        for target in targets:
            stop(target.process)
        stop(upstream)
        if any(t.name == "cliproxy-redis" for t in targets):
            forget_redis_keys(REDIS_URL)

    raw = {t.name: {f"{m}|{c}": r for (m, c), r in t.results.items()} for t in targets}
    (BUILD / "results.json").write_bytes(orjson.dumps(raw, option=orjson.OPT_INDENT_2))
    if litellm_problem:
        notes.append(f"LiteLLM was not benchmarked: {litellm_problem}")
    litellm_version = _litellm_version(Path(args.litellm_venv)) if not litellm_problem else None
    text = render_results(
        raw, [c.name for c in CASES], list(MODES), machine_description(litellm_version), notes,
        args.duration, CHUNKS,
    )  # fmt: skip
    Path(args.output).write_text(text)
    print(f"\nwrote {args.output}")
    return 0


def _litellm_version(venv: Path) -> str | None:
    try:
        out = subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    except (subprocess.SubprocessError, OSError):
        return None
    return out.stdout.strip() or None


if __name__ == "__main__":
    sys.exit(main())
