"""Quota view per account, from what the server already keeps; no upstream calls here.

Each account shows what cliproxy saw on its latest replies (Codex's x-codex-* usage windows,
Claude's unified rate-limit headers), the windows its vendor reported when last asked
(``vendor_quota``, read by server/account_watch.py for the accounts in use), and the cooldowns
routing is applying to it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cliproxy.auth.records import AuthRecord, format_time
from cliproxy.providers.abilities import ReportsUsage
from cliproxy.providers.vendor_reads import VendorReads
from cliproxy.state import AppState

from .auth_files import auth_index, describe_record
from .key_index import routing_id


def quota_entries(
    state: AppState, *, name: str | None = None, index: str | None = None
) -> list[dict[str, Any]]:
    state.auth_store.load()
    entries = [quota_entry(state, record) for record in state.auth_store.records()]
    if name is not None:
        entries = [e for e in entries if e["name"] == name]
    if index is not None:
        entries = [e for e in entries if e["auth_index"] == index]
    return entries


def quota_entry(state: AppState, record: AuthRecord) -> dict[str, Any]:
    summary = describe_record(state, record)
    entry: dict[str, Any] = {
        "name": record.id,
        "auth_index": summary["auth_index"],
        "type": record.type,
        "email": record.email,
        "status": summary["status"],
        "state": summary["state"],
        "unavailable": summary["unavailable"],
        "next_retry_after": summary["next_retry_after"],
        "cooldowns": cooldowns_of(state, record.id),
        "usage": None,
        "vendor_quota": None,
    }
    provider = state.account_providers.get(record.type)
    seen = provider.usage(record.id) if isinstance(provider, ReportsUsage) else None
    if seen is not None:
        entry["usage"] = dict(seen) if isinstance(seen, dict) else seen.to_json()
    if isinstance(provider, VendorReads):
        reading = provider.quota(record.id)
        entry["vendor_quota"] = reading.to_json() if reading is not None else None
    return entry


def cooldowns_of(state: AppState, credential_id: str) -> list[dict[str, Any]]:
    now = state.cooldowns.now()
    return [
        {
            "model": c.model,
            "until": format_time(datetime.fromtimestamp(c.until, UTC)),
            "seconds_left": max(0, round(c.until - now)),
            "reason": c.reason,
        }
        for c in state.cooldowns.snapshot()
        if c.credential_id == credential_id
    ]


def resolve_credential(state: AppState, index: str) -> str | None:
    """The credential id an ``auth_index`` names: an auth file's index, or a routing credential
    id as given (config API keys' `auth-index` is their routing id, e.g. "claude-api-key[0]")."""
    for record in state.auth_store.records():
        if auth_index(record.type, record.path) == index:
            return record.id
    index = routing_id(state.runtime.config, index)
    if index in state.runtime.registry.policies:  # every routed credential has a policy
        return index
    if any(c.credential_id == index for c in state.cooldowns.snapshot()):
        return index
    return None


def reset_quota(state: AppState, credential_id: str, model: str | None = None) -> list[str]:
    """Forget the credential's cooldowns (one model's, or all); returns the models freed."""
    models = [
        c.model
        for c in state.cooldowns.snapshot()
        if c.credential_id == credential_id and (model is None or c.model == model)
    ]
    state.cooldowns.clear(credential_id, model)
    if state.auth_store.get(credential_id) is not None:
        # The listing's "cooling until" follows whatever cooldown is left, if any.
        left = [c.until for c in state.cooldowns.snapshot() if c.credential_id == credential_id]
        until = datetime.fromtimestamp(max(left), UTC) if left else None
        state.auth_store.mark_cooling(credential_id, until)
    return models
