"""The policies of `client-keys` at the request: which models a key may use, and its limits.

The access layer (server/access.py) finds the entry of the presented key and puts it in the
ASGI scope; the routes call ``check_model`` (every call that names a model) and ``admit`` (the
generation calls) once the model is known; the model listings show what ``ClientKey.allows``. What the
limits count is kept by usage/key_limits.py; the slot of a running request is given back by
``release``, which the access layer calls once the route returned (a stream's reply has ended
by then too).
"""

from __future__ import annotations

from starlette.types import Scope

from cliproxy.config.client_keys import ClientKey
from cliproxy.model import ErrorKind, ProxyError
from cliproxy.server.outcomes import track_of
from cliproxy.usage.key_limits import KeyLimits

POLICY = "cliproxy.client_key"  # scope key: the ClientKey entry of the presented key
ADMITTED = "cliproxy.admitted"  # scope key: the name whose running count this request holds


def policy_of(scope: Scope) -> ClientKey | None:
    found: ClientKey | None = scope.get(POLICY)
    return found


def check_model(scope: Scope, model: str) -> None:
    """403 when the request's key may not use ``model``."""
    policy = policy_of(scope)
    if policy is not None and not policy.allows(model):
        raise ProxyError(
            ErrorKind.PERMISSION,
            f"model '{model}' is not allowed for client key '{policy.name}' (allowed-models: "
            f"{', '.join(policy.allowed_models or [])})",
            param="model",
            code="model_not_allowed",
        )


def admit(scope: Scope, limits: KeyLimits, model: str, protocol: str, stream: bool) -> None:
    """For a generation call: the model check, then the limits (both only for a key of
    client-keys). A refusal is noted on the request's track, so the ledger names the model."""
    policy = policy_of(scope)
    if policy is None:
        return
    try:
        check_model(scope, model)
        limits.admit(policy)
    except ProxyError:
        track = track_of(scope)
        track.client_protocol, track.model, track.stream = protocol, model, stream
        raise
    scope[ADMITTED] = policy.name


def release(scope: Scope, limits: KeyLimits) -> None:
    """The request's reply ended: its concurrency slot is free again."""
    name = scope.pop(ADMITTED, None)
    if name is not None:
        limits.release(name)
