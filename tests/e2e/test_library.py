"""docs/library.md's examples, run as written: build, start, request, observe, stop."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx

DOC = Path(__file__).resolve().parents[2] / "docs" / "library.md"


def _examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)


def test_the_documented_embedding_runs() -> None:
    build, watch = _examples()
    scope: dict[str, object] = {}
    exec(build.replace("...\nproxy.stop()\n", ""), scope)
    proxy = scope["proxy"]
    try:
        exec(watch, scope)
        seen: list[object] = []
        proxy.subscribe(seen.append)  # type: ignore[attr-defined]
        reply = httpx.post(
            proxy.base_url + "/v1/chat/completions",  # type: ignore[attr-defined]
            json={"model": "demo-echo", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert reply.status_code == 200
        from cliproxy.usage.events import RequestOutcome

        def finished() -> list[RequestOutcome]:
            return [e for e in seen if isinstance(e, RequestOutcome)]

        deadline = time.monotonic() + 3  # the event follows the reply's last byte
        while not finished() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(finished()) == 1 and finished()[0].requested_model == "demo-echo"
    finally:
        proxy.stop()  # type: ignore[attr-defined]
    assert "proxy.stop()" in build
