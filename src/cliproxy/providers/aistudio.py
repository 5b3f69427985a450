"""The ``aistudio`` provider: Gemini through an AI Studio Build relay in the user's browser.

Each connected relay (providers/aistudio_relay.py) is one runtime-only credential named after
its session (``aistudio-<16 lowercase alphanumerics>``). The request is the Gemini API key
provider's, less the key (the browser calls Google with the user's own AI Studio session) and
sent as an ``http_request`` frame instead of over HTTP.
"""

from __future__ import annotations

from functools import partial

import orjson

from cliproxy.providers.aistudio_relay import RelayHub
from cliproxy.providers.api_keys import GeminiApiKeyProvider, api_headers
from cliproxy.providers.base import Credential, RequestContext, UpstreamRequest

AISTUDIO_BASE_URL = "https://generativelanguage.googleapis.com"
# The reference lists its AI Studio models in a file we do not have (reference/wave2.md (c)):
# these are listed, and any other gemini-* name is served as a family.
AISTUDIO_MODELS = (
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-flash-latest",
    "gemini-pro-latest",
    "gemini-3-pro-preview",
)
AISTUDIO_PREFIXES = ("gemini-",)


class AIStudioProvider(GeminiApiKeyProvider):
    name = "aistudio"

    def __init__(self, hub: RelayHub) -> None:
        self.hub = hub

    def models(self) -> list[str]:
        return list(AISTUDIO_MODELS)

    def _upstream(
        self, credential: Credential, url: str, body: dict[str, object], ctx: RequestContext
    ) -> UpstreamRequest:
        alternate = ctx.client_query.get("$alt")
        if alternate and not ctx.stream:
            url += f"?$alt={alternate}"  # a client that asked for another reply format
        return UpstreamRequest(
            url,
            api_headers(credential, ctx, {}),  # no key: the browser has the user's session
            orjson.dumps(body),
            in_process=partial(self.hub.exchange, credential.id),
        )


def relay_credential(name: str) -> Credential:
    """The credential a relay session stands for; it has no secret (the browser holds it)."""
    # Marked as the reference marks it (Attributes.runtime_only); being account-like also keeps
    # it out of the config keys' position bookkeeping (state.py), which goes by secret and URL:
    # every relay has the same empty secret and URL.
    return Credential(
        id=name, secret="", base_url=AISTUDIO_BASE_URL, account={"runtime_only": "true"}
    )
