"""A background pass repeated until stopped: the shape of the server's housekeeping loops
(vendor reads, rest probes). A pass that fails is logged and the loop goes on."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod

log = logging.getLogger(__name__)


class Periodic(ABC):
    what = "a background pass"  # named in the log when a pass fails

    def __init__(self) -> None:
        self._stop = asyncio.Event()

    def pause(self) -> float:
        """Seconds between two passes."""
        return 60.0

    @abstractmethod
    async def pass_once(self) -> object:
        """One pass; the loop logs what it raises and goes on."""

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
