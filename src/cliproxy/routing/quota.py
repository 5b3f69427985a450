"""Quota fallbacks for Gemini CLI accounts (config ``quota-exceeded``).

When Code Assist answers a quota 429 for one (account, project, model), the same Google login
may still be served: by another Cloud project the account activated (``switch-project``), or
by a preview variant of the model, which has a quota of its own (``switch-preview-model``).
These alternatives are tried at once, before any other credential, so a user with one
account and several projects is not told to wait while a project still has quota.

Only Gemini CLI accounts get fallbacks, as in CLIProxyAPI: a Gemini API key has one quota per
key (no projects to switch), and CLIProxyAPI never switched API keys to preview models.
"""

from __future__ import annotations

from dataclasses import replace

from cliproxy.config.schema import QuotaExceeded
from cliproxy.model import ProxyError
from cliproxy.providers.base import Credential
from cliproxy.providers.gemini_cli import GeminiCLIProvider, project_ids
from cliproxy.routing.registry import Candidate

# Preview releases of a model that Code Assist served under their own quota, tried in this
# order. This is the table CLIProxyAPI used (internal/client/gemini-cli_client.go, before
# v6); it emptied the table in late 2025 as Google retired these dated previews, so an
# upstream may answer 404 for them: the caller should then report the original 429.
PREVIEW_FALLBACKS: dict[str, tuple[str, ...]] = {
    "gemini-2.5-pro": ("gemini-2.5-pro-preview-05-06", "gemini-2.5-pro-preview-06-05"),
    "gemini-2.5-flash": ("gemini-2.5-flash-preview-04-17", "gemini-2.5-flash-preview-05-20"),
    "gemini-2.5-flash-lite": ("gemini-2.5-flash-lite-preview-06-17",),
}

# Wording of a 429 that is about Google's serving capacity for a model, not about the
# caller's quota (ErrorInfo reason MODEL_CAPACITY_EXHAUSTED): another project of the same
# account meets the same shortage, another model may not.
_CAPACITY_WORDING = ("no capacity available", "at capacity")


def is_quota_error(status: int, error: ProxyError) -> bool:
    """A 429 (RESOURCE_EXHAUSTED). Gemini answers every quota and rate limit this way; the
    HTTP status or the error body's own code may carry it (an error sent in a 200 stream)."""
    return status == 429 or error.status == 429


def is_capacity_error(error: ProxyError) -> bool:
    message = error.message.lower()
    return any(wording in message for wording in _CAPACITY_WORDING)


def quota_fallbacks(
    candidate: Candidate, status: int, error: ProxyError, policy: QuotaExceeded
) -> list[Candidate]:
    """Alternatives to try at once after ``candidate`` answered a quota error: the same
    account with another project (switch-project), then preview variants of the model
    (switch-preview-model). Empty when the error is not a quota error or nothing applies.

    The list is complete for the candidate the selector chose: call it once for that
    candidate, not again for a fallback's own 429. Every fallback's credential keeps the
    original id and names exactly one project in ``account["project_id"]``.
    """
    credential = candidate.credential
    if credential is None or not isinstance(candidate.provider, GeminiCLIProvider):
        return []
    if not is_quota_error(status, error):
        return []
    # A copy pinned to one project (project_variants) still knows the account's whole list.
    pinned = project_ids(credential.account)
    current = pinned[0] if pinned else ""
    listed = credential.account.get("project_ids") or credential.account.get("project_id", "")
    others = [p for p in project_ids({"project_id": listed}) if p != current]
    if not policy.switch_project:
        others = []
    model = candidate.upstream_model
    fallbacks: list[Candidate] = []
    if not is_capacity_error(error):
        # Same model first: the client keeps the model it asked for while any project has quota.
        for project in others:
            fallbacks.append(replace(candidate, credential=_with_project(credential, project)))
    if policy.switch_preview_model:
        for preview in PREVIEW_FALLBACKS.get(model, ()):
            for project in [current, *others]:
                pinned_to = _with_project(credential, project) if project else credential
                fallbacks.append(Candidate(candidate.provider, pinned_to, preview))
    return fallbacks


def _with_project(credential: Credential, project: str) -> Credential:
    """The same account (same id, token, settings) billing ``project`` only."""
    projects = credential.account.get("project_ids") or credential.account.get("project_id", "")
    account = {**credential.account, "project_id": project, "project_ids": projects}
    return replace(credential, account=account)


def rest_model(candidate: Candidate) -> str:
    """The model name a cooldown is kept under. An account with several projects has a quota
    per project, so its pairs rest per project ("model@project"); everyone else per model."""
    credential = candidate.credential
    if credential is None or not isinstance(candidate.provider, GeminiCLIProvider):
        return candidate.upstream_model
    account = credential.account
    if "," not in (account.get("project_ids") or account.get("project_id", "")):
        return candidate.upstream_model
    projects = project_ids(account)
    return f"{candidate.upstream_model}@{projects[0]}" if projects else candidate.upstream_model


def project_variants(candidate: Candidate) -> list[Candidate]:
    """The candidate pinned to each of its account's projects in turn (itself when the
    account has one project or none)."""
    credential = candidate.credential
    if credential is None or not isinstance(candidate.provider, GeminiCLIProvider):
        return [candidate]
    projects = project_ids(credential.account)
    if len(projects) < 2:
        return [candidate]
    return [replace(candidate, credential=_with_project(credential, p)) for p in projects]
