"""POST /api-call: a server-side HTTP call made with one configured credential's token.

The reference system relays any request to any URL (an authenticated SSRF primitive); its
Management Center uses that for quota look-ups, model discovery and connectivity tests. We
keep the payload and reply shapes but refuse (403) everything except:

* `auth_index` naming a configured credential: an auth file's 16-hex index, or a config API
  key's routing id ("claude-api-key[0]", "openai-compatibility[<name>][<j>]");
* for an account, the vendor's own quota/profile/model URLs (the reference's quota table):
  https on the vendor host, under the listed paths; or the same paths under the account's own
  `base_url` (a gateway, or a loopback simulator in tests);
* for an API key, any path on the host:port of the key's own base URL (the proxy already
  sends that key there);
* https only, except when the allowed host is a loopback address (local gateways, tests).

The path is checked as the upstream will read it: percent-decoded once. What decoding could
turn into another path is refused outright (an encoded slash or backslash, an encoded `%`,
dot segments in any spelling), since servers differ in whether they decode before routing.

Redirects are not followed (a redirect could leave the allowlist); `Host` and hop-by-hop
headers from the caller are dropped; the caller's `proxy_url` is ignored (the credential's own
proxy, else the global one, is used: a caller-chosen proxy would be another way out).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp

from cliproxy.auth.catalog import catalog
from cliproxy.auth.records import AuthRecord
from cliproxy.config.schema import Config
from cliproxy.model import ProxyError
from cliproxy.routing.build import account_base_url
from cliproxy.server.access import is_loopback
from cliproxy.state import AppState

from .auth_files import auth_index
from .common import ApiError
from .key_index import config_keys, routing_id

log = logging.getLogger(__name__)

TOKEN_PLACEHOLDER = "$TOKEN$"
METHODS = frozenset({"GET", "POST"})
TIMEOUT_SECONDS = 60
MAX_REPLY_BYTES = 8 * 1024 * 1024
DROPPED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade"}
)
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


@dataclass(frozen=True, slots=True)
class Allowed:
    """One origin a credential's token may be sent to, and under which paths (empty: any)."""

    scheme: str
    host: str
    port: int
    paths: tuple[str, ...] = ()

    @classmethod
    def of(cls, base_url: str, paths: tuple[str, ...] = ()) -> Allowed | None:
        try:
            parts = urlsplit(base_url)
            port = parts.port
        except ValueError:
            return None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            return None
        base_path = parts.path.rstrip("/")
        full = tuple(base_path + p for p in paths) if paths else ()
        return cls(scheme, parts.hostname.lower(), port or _default_port(scheme), full)

    def admits(self, scheme: str, host: str, port: int, path: str) -> bool:
        if (host, port) != (self.host, self.port):
            return False
        # https always; plain http only to a loopback host named by the credential itself.
        if scheme != "https" and not (scheme == self.scheme == "http" and is_loopback(host)):
            return False
        return not self.paths or any(_under(path, p) for p in self.paths)


@dataclass(frozen=True, slots=True)
class Target:
    """What an auth_index names: a token, its proxy, and where the token may go."""

    label: str
    proxy_url: str | None
    allowed: tuple[Allowed, ...]
    record: AuthRecord | None = None  # an account (its token is read fresh at call time)
    api_key: str = ""


def resolve_target(state: AppState, index: str) -> Target | None:
    for record in state.auth_store.records():
        if auth_index(record.type, record.path) == index:
            return _account_target(record)
    config = state.runtime.config
    return _key_targets(config).get(routing_id(config, index))


def _account_target(record: AuthRecord) -> Target:
    # Where an account's token may go: its kind's vendor origin and the paths its quota,
    # profile and model look-ups use (shared/reference/management-api.md §3.11).
    entry = catalog().get(record.type)
    allowed: list[Allowed | None] = []
    if entry is not None:
        paths = entry.vendor_paths
        allowed.append(Allowed.of(entry.vendor_origin, paths))
        own = account_base_url(record)
        if own:
            allowed.append(Allowed.of(own, paths))
    return Target(
        label=f"{record.type} account {record.id}",
        proxy_url=record.proxy_url or None,
        allowed=tuple(a for a in allowed if a is not None),
        record=record,
    )


def _key_targets(config: Config) -> dict[str, Target]:
    """Config API keys by their routing id."""
    targets: dict[str, Target] = {}
    for key in config_keys(config):
        kind = catalog().get(key.provider) if key.section != "openai-compatibility" else None
        default = kind.api_key_base_url if kind else ""
        base = key.base_url or default
        targets[key.routing_id] = _key_target(key.routing_id, base, key.api_key, key.proxy_url)
    return targets


def _key_target(ident: str, base_url: str, key: str, proxy_url: str) -> Target:
    allowed = Allowed.of(base_url)
    return Target(
        label=ident,
        proxy_url=proxy_url or None,
        allowed=(allowed,) if allowed else (),
        api_key=key,
    )


# ----- the request ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallRequest:
    auth_index: str
    method: str
    url: str
    headers: dict[str, str]
    data: str


def parse_call(body: Mapping[str, Any]) -> CallRequest:
    """The reference's body: auth_index (authIndex, AuthIndex), method, url, header, data."""
    index = body.get("auth_index") or body.get("authIndex") or body.get("AuthIndex") or ""
    if not isinstance(index, str):
        raise ApiError(400, None, "auth_index: expected a string")
    method, url = body.get("method"), body.get("url")
    if not isinstance(method, str) or not method.strip():
        raise ApiError(400, None, "method: required")
    if not isinstance(url, str) or not url.strip():
        raise ApiError(400, None, "url: required")
    raw_headers = body.get("header") or {}
    if not isinstance(raw_headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw_headers.items()
    ):
        raise ApiError(400, None, "header: expected an object of string values")
    data = body.get("data") or ""
    if not isinstance(data, str):
        raise ApiError(400, None, "data: expected a string (the raw request body)")
    return CallRequest(index.strip(), method.strip().upper(), url.strip(), raw_headers, data)


def check_url(target: Target, url: str) -> None:
    """403 unless the URL is one the target's token may be sent to; 400 when not a URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ApiError(400, None, "url: not a valid absolute URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(400, None, "url: not a valid absolute http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise ApiError(403, None, "url: credentials in the URL are not allowed")
    path = decoded_path(parts.path)
    host = parts.hostname.lower()
    effective_port = port or _default_port(scheme)
    if any(a.admits(scheme, host, effective_port, path or "/") for a in target.allowed):
        return
    if scheme != "https" and any(a.host == host for a in target.allowed):
        raise ApiError(403, None, f"url: only https is allowed to {host}")
    raise ApiError(
        403,
        None,
        f"url: {scheme}://{parts.netloc}{parts.path} is not an endpoint {target.label} may "
        "call (/api-call only reaches the credential's own vendor quota/profile/model URLs "
        "or its configured base URL)",
    )


def decoded_path(raw: str) -> str:
    """The URL path as the upstream reads it (percent-decoded once). Else 403 naming what in
    it could reach another path than the one checked, or 400 for an escape that is not one."""
    lowered = raw.lower()
    if "%2f" in lowered or "%5c" in lowered:
        raise ApiError(
            403, None, "url: an encoded slash or backslash (%2F, %5C) is not allowed in the path"
        )
    if "%25" in lowered:
        raise ApiError(
            403,
            None,
            "url: an encoded percent sign (%25, double encoding) is not allowed in the path",
        )
    if "%" in _PERCENT_ESCAPE.sub("", raw):
        raise ApiError(400, None, "url: a % in the path must start a %XX escape")
    try:
        path = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise ApiError(400, None, "url: the path's %XX escapes do not decode to UTF-8") from None
    if "\\" in path:
        raise ApiError(403, None, "url: a backslash is not allowed in the path")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path):
        raise ApiError(403, None, "url: control characters are not allowed in the path")
    # `..;x` is a dot segment to servers that strip path parameters (Tomcat, some proxies).
    if any(segment.split(";", 1)[0] in (".", "..") for segment in path.split("/")):
        raise ApiError(403, None, "url: dot segments are not allowed in the path")
    return path


def outgoing_headers(headers: Mapping[str, str], token: str) -> dict[str, str]:
    return {
        name: value.replace(TOKEN_PLACEHOLDER, token)
        for name, value in headers.items()
        if name.lower() not in DROPPED_HEADERS
    }


async def current_token(state: AppState, target: Target) -> str:
    if target.record is None:
        token = target.api_key
    else:
        try:
            record = await state.refresher.ensure_fresh(target.record.id)
        except ProxyError as exc:
            raise ApiError(400, None, f"auth token refresh failed: {exc.message}") from None
        token = record.access_token
    if not token:
        raise ApiError(400, None, "auth token not found")
    return token


async def perform(state: AppState, target: Target, call: CallRequest) -> dict[str, Any]:
    """Send it; the reply as the reference shapes it: status_code, header (lists), body."""
    if call.method not in METHODS:
        raise ApiError(403, None, f"method: {call.method} is not allowed through /api-call")
    check_url(target, call.url)
    token = await current_token(state, target)
    headers = outgoing_headers(call.headers, token)
    where = call.url.split("?", 1)[0]  # never log a query: it may carry a key
    try:
        session, proxy = await state.upstream.session_for(target.proxy_url)
        async with session.request(
            call.method,
            call.url,
            headers=headers,
            data=call.data.encode() if call.data else None,
            proxy=proxy,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS),
        ) as reply:
            body = await reply.content.read(MAX_REPLY_BYTES + 1)
            status = reply.status
            reply_headers: dict[str, list[str]] = {}
            for name, value in reply.headers.items():
                reply_headers.setdefault(str(name), []).append(value)  # not istr: orjson
    except (aiohttp.ClientError, TimeoutError, ProxyError, OSError) as exc:
        log.warning("api-call %s %s for %s failed: %s", call.method, where, target.label, exc)
        raise ApiError(502, None, "request failed") from None
    if len(body) > MAX_REPLY_BYTES:
        raise ApiError(502, None, f"upstream reply larger than {MAX_REPLY_BYTES} bytes")
    log.info("api-call %s %s for %s -> %d", call.method, where, target.label, status)
    return {
        "status_code": status,
        "header": reply_headers,
        "body": body.decode("utf-8", errors="replace"),
    }


def _under(path: str, allowed: str) -> bool:
    """`allowed` itself or below it ("/v1/models" admits "/v1/models/x", not "/v1/modelsx")."""
    if allowed.endswith("/"):
        return path.startswith(allowed)
    return path == allowed or path.startswith(allowed + "/")


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80
