"""The shape of a kind's OAuth data: endpoints, client id, scopes, callback port and path, and
how the vendor's CLI sends its refresh grant. A device-code kind (RFC 8628: Kimi, xAI) has no
authorize page or callback; it names its device-authorization endpoint (or an OIDC issuer whose
discovery document names it) and how often and how long to poll.

The machinery in oauth.py is shared; a kind supplies only this data, in its catalog entry
(kinds.py). flows.py applies the environment overrides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class ProjectSetup:
    """How an IDE's login asks Code Assist for the Cloud project the account bills
    (auth/gemini_setup.py runs it): loadCodeAssist, then onboardUser polled when there is none.
    ``{version}`` in a metadata value is the client profile's version."""

    label: str  # what the progress messages call it
    load_metadata: Mapping[str, str]
    onboard_metadata: Mapping[str, str]
    tier_field: str  # the onboardUser body's name for the tier id
    fallback_tier: str  # when loadCodeAssist marks no tier as the default
    project_fields: tuple[str, ...]  # where loadCodeAssist may name an existing project
    # Gemini CLI keeps an existing project only once the account has a tier.
    needs_current_tier: bool = False
    vendor: str = ""  # the client profile whose user-agent the calls carry ("" none)
    user_agent_suffix: str = ""


@dataclass(frozen=True, slots=True)
class OAuthFlow:
    provider: str  # the auth file `type`
    display_name: str
    authorize_url: str
    token_url: str
    client_id: str
    scopes: tuple[str, ...]
    callback_port: int
    callback_path: str
    token_body: Literal["form", "json"]
    client_secret: str = ""  # Google's installed-app secret is public by design
    extra_authorize_params: tuple[tuple[str, str], ...] = ()
    # The state travels in the token request too (Anthropic wants it).
    send_state_in_exchange: bool = False
    # Refresh grants exactly as the vendor's CLI sends them: body encoding, fields in its order
    # (a field with no value is left out) and extra fixed fields.
    refresh_body: Literal["form", "json"] = "form"
    refresh_fields: tuple[str, ...] = ("grant_type", "client_id", "refresh_token", "client_secret")
    refresh_extra: tuple[tuple[str, str], ...] = ()
    refresh_content_type: str = ""  # "" = the encoding's plain media type
    userinfo_url: str = ""
    code_assist_base_url: str = ""
    project_setup: ProjectSetup | None = field(default=None, compare=False)
    # Refresh this many seconds before the token expires (0: the refresher's default lead).
    refresh_lead_seconds: float = 0.0
    # ----- the device-code grant (auth/device.py) ------------------------------------------
    grant: Literal["authorization_code", "device_code"] = "authorization_code"
    device_authorization_url: str = ""
    # An OIDC issuer: the device and token endpoints come from its discovery document, and
    # must be https on one of ``endpoint_domains`` (or under the issuer, when it is overridden).
    issuer: str = ""
    endpoint_domains: tuple[str, ...] = ()
    poll_interval: float = 5.0  # seconds between polls unless the server asks for more
    poll_timeout: float = 900.0  # give up after this long, whatever the code's lifetime
    slow_down_step: float = 5.0  # RFC 8628 section 3.5: slow_down adds 5 seconds
    poll_override: bool = False  # poll_interval was set by the environment: it wins
    state_prefix: str = ""  # management logins' state: "<prefix>-<nanoseconds>" (reference)

    @property
    def device(self) -> bool:
        return self.grant == "device_code"

    def redirect_uri(self, port: int | None = None) -> str:
        return f"http://localhost:{port or self.callback_port}{self.callback_path}"
