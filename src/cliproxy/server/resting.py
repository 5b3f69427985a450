"""Carrying out the pool's decisions that outlive a request: resting a pair, and the token of
an account that is due or was refused."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

from cliproxy.model import ErrorKind, ProxyError
from cliproxy.providers.base import Credential
from cliproxy.routing.cooldown import RATE_LIMIT, TRANSIENT
from cliproxy.state import AppState

log = logging.getLogger(__name__)


def rest(
    state: AppState,
    credential: Credential,
    model: str,
    seconds: float,
    status: int,
    error: ProxyError,
) -> None:
    """Rest the (credential, model) pair for ``seconds``; an account shows it in listings."""
    book = state.cooldowns
    now = book.now()
    until = now + seconds
    rate_limited = status == 429 or error.kind is ErrorKind.RATE_LIMIT
    reason = RATE_LIMIT if rate_limited else TRANSIENT
    book.cool(credential.id, model, until, f"{reason} ({status})")
    log.info("%s cools for %s for %.0f s (%d)", credential.label, model, seconds, status)
    if credential.account and state.auth_store.get(credential.id) is not None:
        # An account cooling for several models shows the latest reset.
        moment, reset = datetime.fromtimestamp(now, UTC), datetime.fromtimestamp(until, UTC)
        current = state.auth_store.status(credential.id, now=moment).cooling_until
        if current is None or current < reset:
            state.auth_store.mark_cooling(credential.id, reset)


def recovered(state: AppState, credential: Credential, model: str) -> None:
    """An attempt on the pair succeeded: a rest another request gave it meanwhile ends."""
    book = state.cooldowns
    if book.available_at(credential.id, model) is not None:
        book.clear(credential.id, model)


async def fresh_credential(state: AppState, credential: Credential) -> Credential:
    """The account's credential with a token that is valid now (refreshed first if due)."""
    record = await state.refresher.ensure_fresh(credential.id)
    if record.access_token == credential.secret:
        return credential
    return replace(credential, secret=record.access_token)


async def reauthorize(state: AppState, credential: Credential) -> bool:
    """Refresh an account after a 401; True when a new token came of it."""
    record = state.auth_store.get(credential.id)
    if record is None:
        return False
    try:
        fresh = await state.refresher.refresh_after_401(record)
    except ProxyError as error:
        log.warning("%s: refresh after 401 failed: %s", credential.label, error.message)
        return False
    return bool(fresh.access_token) and fresh.access_token != credential.secret
