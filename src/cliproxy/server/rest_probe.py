"""Ending an API key's rest when its real quota is back, where no vendor endpoint tells it.

A rate limit rests a (credential, model) pair until the reset the upstream named, or for
``rate-limit-cooldown-seconds`` when it named none; either may outlast the vendor's real window.
Subscription accounts have their windows read from the vendor (account_watch.py); for API keys
and OpenAI-compatible credentials this loop asks the upstream itself, with the smallest request
there is (one word in, one token out): a success ends the rest at once, a new 429 renews it with
the new reset hint. Politely: a pair is probed at most once per reset hint, a credential at most
once a minute, and a rest that ends within a minute anyway is waited out.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from cliproxy.model import Message, ProxyError, Request, TextPart
from cliproxy.providers.base import RequestContext
from cliproxy.routing.cooldown import RATE_LIMIT, Cooldown
from cliproxy.routing.registry import Candidate
from cliproxy.server.periodic import Periodic
from cliproxy.server.upstream_errors import read_error

if TYPE_CHECKING:
    from cliproxy.state import AppState

log = logging.getLogger(__name__)

PROBE_GAP = 60.0  # seconds between two probes of one credential, at least
WORTH_PROBING = 60.0  # a rest with less left than this is waited out
PROBE_TIMEOUT = 30.0


class RestProbe(Periodic):
    what = "probing resting credentials"

    def __init__(self, state: AppState, *, every: float = 15.0) -> None:
        super().__init__()
        self.state = state
        self.every = every
        self._probed: dict[tuple[str, str], float] = {}  # pair -> the reset it was probed for
        self._last: dict[str, float] = {}  # credential -> when it was last probed

    def pause(self) -> float:
        return self.every

    def due(self, now: float) -> list[Cooldown]:
        """The rests to probe now, at most one per credential. A rest seen for the first time
        counts as a contact (the 429 that began it, or a rest read back at start), so the first
        probe comes a minute after it at the earliest."""
        found: list[Cooldown] = []
        for rest in self.state.cooldowns.snapshot():
            credential = rest.credential_id
            if not rest.reason.startswith(RATE_LIMIT) or rest.until - now < WORTH_PROBING:
                continue
            if self.state.auth_store.get(credential) is not None:
                continue  # an account: its vendor's windows are read instead
            last = self._last.setdefault(credential, now)
            if (
                now - last >= PROBE_GAP
                and self._probed.get((credential, rest.model)) != rest.until
                and all(r.credential_id != credential for r in found)
            ):
                found.append(rest)
        return found

    async def pass_once(self) -> int:
        """Probe what is due; how many probes were sent."""
        now = self.state.cooldowns.now()
        sent = 0
        for rest in self.due(now):
            candidate = self.state.runtime.registry.pair(rest.credential_id, rest.model)
            if candidate is None:
                continue
            self._probed[(rest.credential_id, rest.model)] = rest.until
            self._last[rest.credential_id] = now
            sent += 1
            await self._probe(candidate, rest)
        return sent

    async def _probe(self, candidate: Candidate, rest: Cooldown) -> None:
        provider, credential = candidate.provider, candidate.credential
        question = Request(
            model=candidate.upstream_model,
            messages=[Message("user", [TextPart("hi")])],
            max_tokens=1,
        )
        body = provider.protocol.render_request(question)
        ctx = RequestContext(False, {}, {}, provider.protocol.name)
        request = provider.build_request(credential, candidate.upstream_model, body, ctx)
        book = self.state.cooldowns
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                reply = await self.state.upstream.send(request, credential.proxy_url)
                if reply.status < 400:
                    reply.release()
                    book.clear(rest.credential_id, rest.model)
                    log.info(
                        "%s: a probe shows %s usable again; its rest ended",
                        credential.label,
                        rest.model,
                    )
                    return
                error, _ = await read_error(provider, reply, book.now())
        except (ProxyError, TimeoutError, OSError) as exc:
            log.debug("%s: probe unanswered: %s", credential.label, exc)
            return
        if reply.status == 429 and error.retry_after:
            until = book.now() + error.retry_after
            # The upstream's newest word replaces the rest, shorter or longer.
            book.clear(rest.credential_id, rest.model)
            book.cool(rest.credential_id, rest.model, until, f"{RATE_LIMIT} (429)")
            self._probed[(rest.credential_id, rest.model)] = until
            log.info(
                "%s: still limited for %s; resting %.0f s more",
                credential.label,
                rest.model,
                error.retry_after,
            )
