"""Random ids for replies, tool calls and requests, made without a system call.

``uuid.uuid4()``, ``secrets`` and ``os.urandom`` ask the kernel for randomness and release the
GIL while they do: on the event loop, with the ledger's writer thread or a worker thread
wanting the GIL at that moment, the loop then waits for that thread (measured: ~160 µs a
call against 0.3 µs next to a busy thread). These ids only need to be unique, not secret, so
they come from ``random`` (reseeded in each forked worker). Secrets (OAuth states, PKCE
verifiers, keys) keep using ``secrets``.
"""

from __future__ import annotations

import random
import uuid

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def random_hex(length: int) -> str:
    """``length`` lower-case hex digits."""
    return f"{random.getrandbits(4 * length):0{length}x}"


def random_alnum(length: int) -> str:
    """``length`` letters and digits."""
    return "".join(random.choices(_ALNUM, k=length))


def random_uuid4() -> uuid.UUID:
    """A version-4 UUID, as ``uuid.uuid4()`` makes, from ``random``."""
    return uuid.UUID(int=random.getrandbits(128), version=4)
