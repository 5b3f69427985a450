"""GET /metrics: the Prometheus exposition of the application's metrics (usage/metrics.py).

Who may read it: a client on this machine, freely (a local Prometheus, curl); anyone else
under the management API's own rule (security.py): `remote-management.allow-remote` on and the
management key presented (`Authorization: Bearer <key>` or `X-Management-Key`), with the same
lockout after repeated wrong keys. The client address is the socket peer unless that peer is a
trusted proxy (`remote-management.trusted-proxies`), so a reverse proxy on this machine does
not make every client "local".

The credential gauge is computed here at scrape time: every config API key the registry routes
and every account file, as ready, cooling (a rest for at least one model), disabled or
needs_login, as the auth-file listing derives them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cliproxy.auth.records import AccountState
from cliproxy.config.schema import RemoteManagement
from cliproxy.management.common import json_response
from cliproxy.management.security import (
    ManagementGuard,
    Refusal,
    client_address,
    from_another_site,
    presented_management_key,
)
from cliproxy.server.access import is_loopback
from cliproxy.state import AppState
from cliproxy.usage.metrics import CONTENT_TYPE, CREDENTIAL_STATES

PATH = "/metrics"

_STATES = {
    AccountState.ACTIVE: "ready",
    AccountState.COOLING: "cooling",
    AccountState.DISABLED: "disabled",
    AccountState.NEEDS_LOGIN: "needs_login",
}
_NOT_LOCAL = Refusal(
    403,
    "/metrics is open to clients on this machine; from elsewhere it needs the management key "
    "(remote-management.secret-key and allow-remote)",
)


async def metrics_refusal(
    guard: ManagementGuard,
    settings: RemoteManagement,
    peer: str | None,
    headers: dict[str, str],
) -> Refusal | None:
    """None when this client may read the metrics, else what to answer."""
    address = client_address(peer, headers, settings.trusted_proxies)
    if is_loopback(address):
        return None
    refusal = await guard.check(
        settings,
        address,
        presented_management_key(headers),
        counts=not from_another_site(headers),
    )
    if refusal is not None and refusal.status == 404:
        return _NOT_LOCAL  # no management key exists: nobody from elsewhere may read them
    return refusal


def credential_counts(state: AppState) -> dict[tuple[str, str], int]:
    """(provider, state) -> how many credentials; every state of a provider present is given,
    zeros included, so a dashboard sees a state emptying rather than vanishing."""
    counts: Counter[tuple[str, str]] = Counter()
    resting = {rest.credential_id for rest in state.cooldowns.snapshot()}
    store = state.auth_store
    accounts: set[str] = set()
    for record in store.records():
        accounts.add(record.id)
        provider = state.account_providers.get(record.type)
        name = provider.name if provider is not None else record.type
        status = _STATES[store.status(record).state]
        if status == "ready" and record.id in resting:
            status = "cooling"
        counts[(name, status)] += 1
    for credential_id, name in state.runtime.registry.credential_providers().items():
        if credential_id not in accounts:
            counts[(name, "cooling" if credential_id in resting else "ready")] += 1
    for name in {provider for provider, _ in counts}:
        for status in CREDENTIAL_STATES:
            counts.setdefault((name, status), 0)
    return dict(counts)


def metrics_route(state_getter: Callable[[], AppState], guard: ManagementGuard) -> Route:
    async def metrics(request: Request) -> Response:
        state = state_getter()
        if not state.runtime.config.metrics_enabled:
            return json_response({"error": "metrics are turned off (metrics-enabled: false)"}, 404)
        headers = {name.lower(): value for name, value in request.headers.items()}
        peer = request.client.host if request.client else None
        settings = state.runtime.config.remote_management
        refusal = await metrics_refusal(guard, settings, peer, headers)
        if refusal is not None:
            return json_response({"error": refusal.message}, refusal.status)
        body = state.metrics.exposition(credential_counts(state))
        return Response(body, media_type=CONTENT_TYPE)

    return Route(PATH, metrics, methods=["GET"])
