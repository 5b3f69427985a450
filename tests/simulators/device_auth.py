"""An OAuth device-authorization server (RFC 8628) as Kimi's and xAI's work: the device
authorization endpoint, the token endpoint (device-code and refresh grants) and, for OIDC
issuers, the discovery document. Mounted into a vendor simulator (kimi_sim, xai_sim), which
also serves the chat endpoints that accept the tokens issued here.

Scripting (per test, after ``reset``):
- ``outcomes``: what the next polls answer before the approval, in order: "pending",
  "slow_down", "denied", "expired" (the last two end the code); once empty, the poll succeeds.
- ``interval``: the interval the device-authorization reply announces, and which polls must
  keep to; a poll that comes sooner is answered slow_down (as real servers do) and counted in
  ``too_fast``. Each slow_down (scripted or earned) adds ``interval`` to what is required.
- ``fail_refresh``: statuses answered to the next refresh grants.
Recorded: ``device_requests``, ``token_requests`` (form fields and headers), ``poll_times``.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass
class _Code:
    device_code: str
    outcomes: deque[str]
    required_gap: float
    last_poll: float | None = None
    finished: bool = False


@dataclass
class Recorded:
    form: dict[str, str]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)


class DeviceAuthority:
    def __init__(
        self,
        client_id: str,
        *,
        required_headers: tuple[str, ...] = (),
        verification_uri: str = "https://example.invalid/device",
        id_token: Callable[[], str] | None = None,
        on_issue: Callable[[str], None] | None = None,
    ) -> None:
        self.client_id = client_id
        self.required_headers = required_headers
        self.verification_uri = verification_uri
        self.id_token = id_token
        self.on_issue = on_issue  # told each access token issued (the chat routes accept it)
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.outcomes: deque[str] = deque()
        self.interval = 0.05
        self.expires_in = 900
        self.user_code = "WDJB-MJHT"
        self.fail_refresh: deque[int] = deque()
        self.rotate_refresh_tokens = True
        self.access_expires_in = 3600
        self.device_requests: list[Recorded] = []
        self.token_requests: list[Recorded] = []
        self.poll_times: list[float] = []
        self.too_fast = 0
        self.refresh_calls = 0
        self._codes: dict[str, _Code] = {}
        self._refresh_tokens: set[str] = set()

    # ----- helpers for tests ------------------------------------------------------------------

    def issue(self) -> dict[str, Any]:
        """A fresh token set, as a token reply carries it (for auth files a test writes)."""
        access = f"at-{secrets.token_hex(8)}"
        refresh = f"rt-{secrets.token_hex(8)}"
        with self._lock:
            self._refresh_tokens.add(refresh)
        if self.on_issue is not None:
            self.on_issue(access)
        tokens: dict[str, Any] = {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": self.access_expires_in,
            "scope": "openid offline_access",
        }
        if self.id_token is not None:
            tokens["id_token"] = self.id_token()
        return tokens

    def missing_headers(self, headers: dict[str, str]) -> list[str]:
        return [name for name in self.required_headers if not headers.get(name.lower())]

    # ----- routes -----------------------------------------------------------------------------

    async def _received(
        self, request: Request, log: list[Recorded]
    ) -> tuple[dict[str, str], Response | None]:
        """Record a call; the refusal for a wrong client or missing device headers."""
        form = {k: str(v) for k, v in (await request.form()).items()}
        headers = {k.lower(): v for k, v in request.headers.items()}
        log.append(Recorded(form, headers))
        if form.get("client_id") != self.client_id:
            return form, _error(401, "invalid_client", "unknown client_id")
        if missing := self.missing_headers(headers):
            return form, _error(400, "invalid_request", f"missing header {missing[0]}")
        return form, None

    async def device_authorization(self, request: Request) -> Response:
        _, refused = await self._received(request, self.device_requests)
        if refused is not None:
            return refused
        code = _Code(f"dc-{secrets.token_hex(8)}", deque(self.outcomes), self.interval)
        with self._lock:
            self._codes[code.device_code] = code
        return JSONResponse(
            {
                "device_code": code.device_code,
                "user_code": self.user_code,
                "verification_uri": self.verification_uri,
                "verification_uri_complete": f"{self.verification_uri}?user_code={self.user_code}",
                "expires_in": self.expires_in,
                "interval": self.interval,
            }
        )

    async def token(self, request: Request) -> Response:
        form, refused = await self._received(request, self.token_requests)
        if refused is not None:
            return refused
        grant = form.get("grant_type")
        if grant == DEVICE_GRANT:
            return self._poll(form.get("device_code", ""))
        if grant == "refresh_token":
            return self._refresh(form.get("refresh_token", ""))
        return _error(400, "unsupported_grant_type", str(grant))

    def _poll(self, device_code: str) -> Response:
        now = time.monotonic()
        self.poll_times.append(now)
        with self._lock:
            code = self._codes.get(device_code)
        if code is None or code.finished:
            return _error(400, "invalid_grant", "unknown device_code")
        gap = None if code.last_poll is None else now - code.last_poll
        code.last_poll = now
        if gap is not None and gap < code.required_gap * 0.8:
            self.too_fast += 1
            code.required_gap += self.interval
            return _error(400, "slow_down", "polling too fast")
        outcome = code.outcomes.popleft() if code.outcomes else "ok"
        if outcome == "pending":
            return _error(400, "authorization_pending", "the user has not approved yet")
        if outcome == "slow_down":
            code.required_gap += self.interval
            return _error(400, "slow_down", "polling too fast")
        if outcome in ("denied", "expired"):
            code.finished = True
            error = "access_denied" if outcome == "denied" else "expired_token"
            return _error(400, error, f"the device code is {outcome}")
        code.finished = True
        return JSONResponse(self.issue())

    def _refresh(self, refresh_token: str) -> Response:
        self.refresh_calls += 1
        if self.fail_refresh:
            status = self.fail_refresh.popleft()
            return _error(status, "server_error" if status >= 500 else "invalid_grant", "scripted")
        with self._lock:
            known = refresh_token in self._refresh_tokens
            if known and self.rotate_refresh_tokens:
                self._refresh_tokens.discard(refresh_token)
        if not known:
            return _error(400, "invalid_grant", "unknown refresh token")
        tokens = self.issue()
        if not self.rotate_refresh_tokens:
            tokens["refresh_token"] = refresh_token
        return JSONResponse(tokens)


def _error(status: int, error: str, description: str) -> Response:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)
