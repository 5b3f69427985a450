"""Who may use the management API: availability, the management key, client address, lockout.

Decision order per request (CLIProxyAPI's, made explicit where it was implicit):
1. No secret-key and no MANAGEMENT_PASSWORD: the API does not exist (404, empty body).
2. The client address is banned after repeated failures: 403.
3. A client that is not on this machine and `allow-remote` is off: 403 (not a failure).
4. No key presented: 401, not counted. A wrong key: 401 and one failure counted, unless the
   request came from another site's page (see ``from_another_site``).

Unlike the reference, requests without a key and requests from other sites' pages never count
toward the lockout: otherwise any web page the operator opens could ban the loopback address
with five ``<img>`` tags. Only someone presenting a wrong key directly (a script, a CLI, our own
console) moves the counter.

Safer than the reference: the client address is the socket peer unless that peer is listed in
`remote-management.trusted-proxies`, and MANAGEMENT_PASSWORD does not switch remote access on.
Keys are never logged; comparisons take constant time (hmac.compare_digest, bcrypt).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import bcrypt

from cliproxy.config.schema import RemoteManagement
from cliproxy.server.access import is_loopback

MAX_FAILURES = 5
BAN_SECONDS = 30 * 60
# Idle failure records are forgotten after this long (a janitor pass runs on each failure).
FORGET_AFTER_SECONDS = 2 * 3600
BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
BCRYPT_COST = 10  # what CLIProxyAPI writes (Go's bcrypt.DefaultCost), so hashes move both ways
ENV_PASSWORD = "MANAGEMENT_PASSWORD"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_bcrypt_hash(value: str) -> bool:
    return value.startswith(BCRYPT_PREFIXES)


def hash_secret(plain: str) -> str:
    return bcrypt.hashpw(plain.encode(), bcrypt.gensalt(BCRYPT_COST)).decode()


def env_password() -> str:
    return os.environ.get(ENV_PASSWORD, "").strip()


def management_enabled(settings: RemoteManagement) -> bool:
    return bool(settings.secret_key.strip() or env_password())


def presented_management_key(headers: dict[str, str]) -> str:
    """`Authorization: Bearer K` (scheme in any case); any other non-empty Authorization value
    is the key itself; only without Authorization, `X-Management-Key`."""
    auth = headers.get("authorization", "").strip()
    if auth:
        scheme, _, rest = auth.partition(" ")
        return rest.strip() if scheme.lower() == "bearer" else auth
    return headers.get("x-management-key", "").strip()


def from_another_site(headers: dict[str, str]) -> bool:
    """A request a page of another site made the browser send: marked so by Fetch Metadata,
    or carrying an Origin that is not the proxy's own."""
    if headers.get("sec-fetch-site") == "cross-site":
        return True
    origin = headers.get("origin")
    if origin is None:
        return False
    netloc = urlsplit(origin).netloc.lower() if "://" in origin else ""
    return netloc != headers.get("host", "").lower()


def _parse_ip(text: str) -> IPAddress | None:
    text = text.strip().strip("[]")
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress | None, networks: Iterable[IPNetwork]) -> bool:
    return address is not None and any(address in network for network in networks)


def client_address(peer: str | None, headers: dict[str, str], trusted_proxies: list[str]) -> str:
    """The address the decision is about. Forwarding headers count only when the socket peer
    is a trusted proxy; then X-Forwarded-For is read right to left and the first hop that is
    not itself a trusted proxy is the client (the left part can be forged by that client)."""
    if not peer or not trusted_proxies:
        return peer or ""
    networks = [ipaddress.ip_network(cidr, strict=False) for cidr in trusted_proxies]
    if not _trusted(_parse_ip(peer), networks):
        return peer
    hops = [hop for hop in headers.get("x-forwarded-for", "").split(",") if hop.strip()]
    parsed = [_parse_ip(hop) for hop in hops]
    if hops and all(address is not None for address in parsed):
        for address in reversed(parsed):
            if not _trusted(address, networks):
                return str(address)
        return str(parsed[0])
    real = _parse_ip(headers.get("x-real-ip", ""))
    return str(real) if real is not None else peer


@dataclass
class Attempts:
    failures: int = 0
    banned_until: float = 0.0
    last_seen: float = 0.0


class Lockouts:
    """Failed attempts per client address, and the bans they earn (this process only; with a
    state store, management/redis_lockouts.py shares them across instances)."""

    def __init__(self) -> None:
        self.attempts: dict[str, Attempts] = {}

    def banned_until(self, address: str) -> float:
        attempts = self.attempts.get(address)
        return attempts.banned_until if attempts is not None else 0.0

    def failed(self, address: str, now: float) -> None:
        attempts = self.attempts.setdefault(address, Attempts())
        attempts.failures += 1
        attempts.last_seen = now
        if attempts.failures >= MAX_FAILURES:
            attempts.failures = 0
            attempts.banned_until = now + BAN_SECONDS
        self._forget_idle(now)

    def succeeded(self, address: str, now: float) -> None:
        """The right key from ``address``: its failures are forgiven (never a ban: a banned
        address is refused before its key is looked at)."""
        self.attempts.pop(address, None)

    def _forget_idle(self, now: float) -> None:
        idle = [
            address
            for address, attempts in self.attempts.items()
            if attempts.banned_until <= now and now - attempts.last_seen > FORGET_AFTER_SECONDS
        ]
        for address in idle:
            del self.attempts[address]


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str  # empty: answer without a body (the API "does not exist")


def _duration(seconds: float) -> str:
    whole = max(int(seconds + 0.999), 1)
    minutes, rest = divmod(whole, 60)
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"


class ManagementGuard:
    """Checks one request. `clock` is swappable so tests can move time past a ban; wall time,
    so a ban set on one instance ends at the same moment on the others."""

    def __init__(
        self, clock: Callable[[], float] = time.time, lockouts: Lockouts | None = None
    ) -> None:
        self.clock = clock
        self.lockouts = lockouts or Lockouts()
        # Remembers the last key that verified against a hash, as an HMAC under a per-process
        # salt (never the key itself), so bcrypt's ~50 ms runs once rather than per request.
        self._salt = secrets.token_bytes(32)
        self._verified: tuple[str, bytes] | None = None
        # Plaintext secret (HMAC) → its hash, for configs reloaded with a plaintext key.
        self._hashed_plain: tuple[bytes, str] | None = None

    async def check(
        self, settings: RemoteManagement, address: str, key: str, *, counts: bool = True
    ) -> Refusal | None:
        """None when allowed, else what to answer. ``counts``: a wrong key from this request
        counts toward the lockout (False for requests from other sites' pages)."""
        if not management_enabled(settings):
            return Refusal(404, "")
        now = self.clock()
        banned_until = self.lockouts.banned_until(address)
        if banned_until > now:
            wait = _duration(banned_until - now)
            return Refusal(403, f"IP banned due to too many failed attempts. Try again in {wait}")
        if not is_loopback(address) and not settings.allow_remote:
            return Refusal(403, "remote management disabled")
        if not key:
            return Refusal(401, "missing management key")
        if await self._key_matches(settings, key):
            self.lockouts.succeeded(address, now)
            return None
        if counts:
            self.lockouts.failed(address, now)
        return Refusal(401, "invalid management key")

    async def _key_matches(self, settings: RemoteManagement, key: str) -> bool:
        password = env_password()
        if password and hmac.compare_digest(key.encode(), password.encode()):
            return True
        stored = settings.secret_key.strip()
        if not stored:
            return False
        hashed = stored if is_bcrypt_hash(stored) else await self.hash_for_plain(stored)
        fingerprint = self.fingerprint(key)
        verified = self._verified
        if verified and verified[0] == hashed and hmac.compare_digest(verified[1], fingerprint):
            return True
        try:
            ok = await asyncio.to_thread(bcrypt.checkpw, key.encode(), hashed.encode())
        except ValueError:  # a malformed hash in the file: nothing can match it
            return False
        if ok:
            self._verified = (hashed, fingerprint)
        return ok

    async def hash_for_plain(self, plain: str) -> str:
        """A bcrypt hash of a plaintext secret, computed once per distinct secret."""
        fingerprint = self.fingerprint(plain)
        if self._hashed_plain is not None and hmac.compare_digest(
            self._hashed_plain[0], fingerprint
        ):
            return self._hashed_plain[1]
        hashed = await asyncio.to_thread(hash_secret, plain)
        self._hashed_plain = (fingerprint, hashed)
        return hashed

    def fingerprint(self, text: str) -> bytes:
        """HMAC of a secret under a per-process salt: comparable, never reversible."""
        return hmac.new(self._salt, text.encode(), hashlib.sha256).digest()
