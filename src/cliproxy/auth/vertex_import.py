"""Turning a service-account key file into a Vertex auth file: one function that
`cliproxy login vertex --service-account` and POST /v0/management/vertex/import share.

The key is checked before anything is written (a refused file leaves the auth directory as it
was, including an earlier import of the same project), and the auth file is written atomically,
0600, through the store, which starts routing it at once. Importing a project again replaces its
key and location but keeps what the user set on the account (priority, note, weight, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .identity import NEEDS_LOGIN_FIELD
from .records import AuthRecord
from .store import AuthStore
from .vertex_account import read_service_account, vertex_file

# What a new key replaces in an earlier import of the project; the rest is the user's.
_REPLACED = ("access_token", "expired", "last_refresh", NEEDS_LOGIN_FIELD)


def import_service_account(
    store: AuthStore,
    data: bytes | Mapping[str, Any],
    *,
    location: str = "",
    prefix: str = "",
    where: str = "file",
) -> tuple[AuthRecord, bool]:
    """(the account's record, whether it replaced an earlier import). Raises
    ServiceAccountError (naming the field) for a bad key, AuthWriteError when it cannot be
    written."""
    account = read_service_account(data, where)
    name, raw = vertex_file(account, location=location, prefix=prefix)
    earlier = store.get(name)
    replaced = earlier is not None
    if earlier is not None:
        kept = {key: value for key, value in earlier.raw.items() if key not in _REPLACED}
        if not prefix.strip():
            raw["prefix"] = earlier.prefix
        raw = {**kept, **raw}
    return store.create(name, raw).record, replaced
