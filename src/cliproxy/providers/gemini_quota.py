"""Quota alternatives of a Gemini CLI account (config ``quota-exceeded``).

When Code Assist answers a quota 429 for one (account, project, model), the same Google login
may still be served: by another Cloud project the account activated (``switch-project``), or
by a preview variant of the model, which has a quota of its own (``switch-preview-model``).
The pool tries these at once, before any other credential (routing/quota.py asks for them
through the ``QuotaAlternatives`` ability), so a user with one account and several projects is
not told to wait while a project still has quota.

Only Gemini CLI accounts have alternatives, as in CLIProxyAPI: a Gemini API key has one quota
per key (no projects to switch), and CLIProxyAPI never switched API keys to preview models.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from cliproxy.config.schema import QuotaExceeded
from cliproxy.model import ProxyError
from cliproxy.providers.base import Credential

# Preview releases of a model that Code Assist served under their own quota, tried in this
# order. This is the table CLIProxyAPI used (internal/client/gemini-cli_client.go, before
# v6); it emptied the table in late 2025 as Google retired these dated previews, so an
# upstream may answer 404 for them: the pool then reports the original 429.
PREVIEW_FALLBACKS: dict[str, tuple[str, ...]] = {
    "gemini-2.5-pro": ("gemini-2.5-pro-preview-05-06", "gemini-2.5-pro-preview-06-05"),
    "gemini-2.5-flash": ("gemini-2.5-flash-preview-04-17", "gemini-2.5-flash-preview-05-20"),
    "gemini-2.5-flash-lite": ("gemini-2.5-flash-lite-preview-06-17",),
}

# Wording of a 429 that is about Google's serving capacity for a model, not about the
# caller's quota (ErrorInfo reason MODEL_CAPACITY_EXHAUSTED): another project of the same
# account meets the same shortage, another model may not.
_CAPACITY_WORDING = ("no capacity available", "at capacity")


def project_ids(account: Mapping[str, str]) -> list[str]:
    """The Cloud projects an account may use, in order, without repeats. CLIProxyAPI writes
    several as one comma-separated ``project_id`` (a login that activated "ALL" projects)."""
    seen: list[str] = []
    for item in account.get("project_id", "").split(","):
        project = item.strip()
        if project and project not in seen:
            seen.append(project)
    return seen


def active_project(credential: Credential) -> str:
    """The project a request with this credential bills: the first one listed ("" if none).
    Quota fallbacks pin a single other project into a copy of the credential."""
    projects = project_ids(credential.account)
    return projects[0] if projects else ""


def is_quota_error(status: int, error: ProxyError) -> bool:
    """A 429 (RESOURCE_EXHAUSTED). Gemini answers every quota and rate limit this way; the
    HTTP status or the error body's own code may carry it (an error sent in a 200 stream)."""
    return status == 429 or error.status == 429


def is_capacity_error(error: ProxyError) -> bool:
    message = error.message.lower()
    return any(wording in message for wording in _CAPACITY_WORDING)


def alternatives(
    credential: Credential, model: str, status: int, error: ProxyError, policy: QuotaExceeded
) -> list[tuple[Credential, str]]:
    """(credential, model) pairs to try at once after a quota error: the same account with
    another project, then preview variants of the model on every project. Each credential
    keeps the original id and names exactly one project in ``account["project_id"]``."""
    if not is_quota_error(status, error):
        return []
    # A copy pinned to one project (variants) still knows the account's whole list.
    pinned = project_ids(credential.account)
    current = pinned[0] if pinned else ""
    others = [p for p in project_ids({"project_id": _listed(credential)}) if p != current]
    if not policy.switch_project:
        others = []
    found: list[tuple[Credential, str]] = []
    if not is_capacity_error(error):
        # Same model first: the client keeps the model it asked for while any project has quota.
        found.extend((with_project(credential, project), model) for project in others)
    if policy.switch_preview_model:
        for preview in PREVIEW_FALLBACKS.get(model, ()):
            for project in [current, *others]:
                found.append(
                    (with_project(credential, project) if project else credential, preview)
                )
    return found


def with_project(credential: Credential, project: str) -> Credential:
    """The same account (same id, token, settings) billing ``project`` only."""
    account = {**credential.account, "project_id": project, "project_ids": _listed(credential)}
    return replace(credential, account=account)


def rest_key(credential: Credential, model: str) -> str:
    """The model name a cooldown is kept under: an account with several projects has a quota
    per project, so its pairs rest per project ("model@project")."""
    if "," not in _listed(credential):
        return model
    projects = project_ids(credential.account)
    return f"{model}@{projects[0]}" if projects else model


def variants(credential: Credential) -> list[Credential]:
    """The credential pinned to each of its account's projects in turn (itself alone when the
    account has one project or none)."""
    projects = project_ids(credential.account)
    if len(projects) < 2:
        return [credential]
    return [with_project(credential, project) for project in projects]


def _listed(credential: Credential) -> str:
    account = credential.account
    return account.get("project_ids") or account.get("project_id", "")
