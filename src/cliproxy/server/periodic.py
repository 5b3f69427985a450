"""A background pass repeated until stopped: the shape of the server's housekeeping loops
(vendor reads, rest probes). A pass that fails is logged and the loop goes on."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


class Periodic:
    what = "a background pass"  # named in the log when a pass fails

    def __init__(self) -> None:
        self._stop = asyncio.Event()

    def pause(self) -> float:
        """Seconds between two passes."""
        return 60.0

    async def pass_once(self) -> object:
        raise NotImplementedError

    async def run(self) -> None:
        self._stop.clear()
        while not self._stop.is_set():
            try:
                await self.pass_once()
            except Exception:
                log.exception("%s failed; trying again later", self.what)
            try:
                await asyncio.wait_for(self._stop.wait(), self.pause())
            except TimeoutError:
                pass

    def stop(self) -> None:
        self._stop.set()
