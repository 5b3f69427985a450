"""Waiting for something the server does in the background (a reload, a vendor read)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(condition: Callable[[], bool], seconds: float = 8.0) -> bool:
    """Poll ``condition`` every 0.1 s until it holds or ``seconds`` pass; its last answer."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()
