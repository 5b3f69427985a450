"""Random ids (model/ids.py): the shapes the protocols' clients expect, and no repeats."""

from __future__ import annotations

import re

from cliproxy.model.ids import random_alnum, random_hex, random_uuid4


def test_ids_have_their_shapes_and_do_not_repeat() -> None:
    hexes = {random_hex(24) for _ in range(2000)}
    assert len(hexes) == 2000
    assert all(re.fullmatch(r"[0-9a-f]{24}", value) for value in hexes)
    assert all(len(random_hex(length)) == length for length in (1, 8, 12, 22, 32))
    words = {random_alnum(24) for _ in range(2000)}
    assert len(words) == 2000 and all(re.fullmatch(r"[A-Za-z0-9]{24}", w) for w in words)
    uuids = {random_uuid4() for _ in range(2000)}
    assert len(uuids) == 2000
    assert all(u.version == 4 and u.variant == "specified in RFC 4122" for u in uuids)
