"""Replies made inside the proxy, for an upstream that needs no network (the offline demo).

A provider whose requests carry an ``in_process`` handler is reached through the same
forwarding core as any other: the transport calls the handler instead of sending HTTP, and the
server reads the ``InProcessReply`` as it reads aiohttp's. So the demo goes through the same
pass-through and translation paths, retries, outcome events and payload rules as a real
upstream, and nothing in the server knows it is there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping


class _Chunks:
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    async def iter_any(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


class InProcessReply:
    """A complete reply, JSON or a stream's frames, with aiohttp's reading interface."""

    def __init__(
        self, status: int, content_type: str, chunks: Iterable[bytes], headers: Mapping[str, str]
    ) -> None:
        self.status = status
        self.content_type = content_type
        self._chunks = list(chunks)
        self.headers: Mapping[str, str] = {"content-type": content_type, **headers}
        self.content = _Chunks(self._chunks)

    @classmethod
    def json(cls, status: int, body: bytes) -> InProcessReply:
        return cls(status, "application/json", [body], {})

    @classmethod
    def event_stream(cls, frames: Iterable[bytes]) -> InProcessReply:
        return cls(200, "text/event-stream", frames, {"cache-control": "no-cache"})

    async def read(self) -> bytes:
        return b"".join(self._chunks)

    def release(self) -> None:
        return None
