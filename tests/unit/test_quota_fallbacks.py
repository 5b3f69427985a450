"""quota_fallbacks: which (project, model) alternatives a Gemini CLI account gets after a quota
429, in which order, and when it gets none; plus how several projects are read from an auth
file and which one a request bills."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cliproxy.config.schema import QuotaExceeded
from cliproxy.model import ErrorKind, ProxyError
from cliproxy.protocols.gemini_errors import parse_error
from cliproxy.providers.api_keys import GeminiApiKeyProvider
from cliproxy.providers.base import Credential, RequestContext
from cliproxy.providers.demo import DemoProvider
from cliproxy.providers.gemini_cli import GeminiCLIProvider
from cliproxy.providers.gemini_quota import PREVIEW_FALLBACKS, active_project, project_ids
from cliproxy.routing.quota import quota_fallbacks
from cliproxy.routing.registry import Candidate

CLI = GeminiCLIProvider()
ACCOUNT = Credential(
    "gemini-a@example.com-all.json",
    "ya29.token",
    "http://127.0.0.1:1",
    proxy_url="direct",
    account={"email": "a@example.com", "type": "gemini", "project_id": "proj-a, proj-b"},
    weight=3,
    priority=2,
)
BOTH = QuotaExceeded()
QUOTA = ProxyError(ErrorKind.RATE_LIMIT, "You have exhausted your capacity on this model.")
PRO_PREVIEWS = PREVIEW_FALLBACKS["gemini-2.5-pro"]


def quota_body(message: str) -> bytes:
    error = {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED"}
    return orjson.dumps({"error": error})


def pairs(candidates: list[Candidate]) -> list[tuple[str, str]]:
    """(project, model) of each candidate, in order."""
    out = []
    for candidate in candidates:
        assert candidate.credential is not None
        out.append((candidate.credential.account.get("project_id", ""), candidate.upstream_model))
    return out


def test_other_projects_come_first_then_previews_on_every_project() -> None:
    found = quota_fallbacks(Candidate(CLI, ACCOUNT, "gemini-2.5-pro"), 429, QUOTA, BOTH)
    first, second = PRO_PREVIEWS
    assert pairs(found) == [
        ("proj-b", "gemini-2.5-pro"),
        ("proj-a", first),
        ("proj-b", first),
        ("proj-a", second),
        ("proj-b", second),
    ]


def test_fallbacks_are_the_same_account_with_one_project_each() -> None:
    found = quota_fallbacks(Candidate(CLI, ACCOUNT, "gemini-2.5-pro"), 429, QUOTA, BOTH)
    for candidate in found:
        credential = candidate.credential
        assert credential is not None
        assert candidate.provider is CLI
        # The auth store and the token refresher find the account by this id.
        assert credential.id == ACCOUNT.id
        assert credential.secret == ACCOUNT.secret
        assert (credential.base_url, credential.proxy_url) == (ACCOUNT.base_url, "direct")
        assert (credential.weight, credential.priority) == (3, 2)
        assert credential.account["email"] == "a@example.com"
        assert "," not in credential.account["project_id"]
    # The original candidate is untouched (credentials are shared by every request).
    assert ACCOUNT.account["project_id"] == "proj-a, proj-b"


def test_a_model_without_previews_only_switches_project() -> None:
    found = quota_fallbacks(Candidate(CLI, ACCOUNT, "gemini-3-pro-preview"), 429, QUOTA, BOTH)
    assert pairs(found) == [("proj-b", "gemini-3-pro-preview")]


def test_switch_project_off_keeps_the_current_project() -> None:
    policy = QuotaExceeded(switch_project=False)
    found = quota_fallbacks(Candidate(CLI, ACCOUNT, "gemini-2.5-pro"), 429, QUOTA, policy)
    assert pairs(found) == [("proj-a", model) for model in PRO_PREVIEWS]


def test_switch_preview_model_off_keeps_the_model() -> None:
    policy = QuotaExceeded(switch_preview_model=False)
    found = quota_fallbacks(Candidate(CLI, ACCOUNT, "gemini-2.5-pro"), 429, QUOTA, policy)
    assert pairs(found) == [("proj-b", "gemini-2.5-pro")]


def test_both_switches_off_means_no_fallback() -> None:
    policy = QuotaExceeded(switch_project=False, switch_preview_model=False)
    assert quota_fallbacks(Candidate(CLI, ACCOUNT, "gemini-2.5-pro"), 429, QUOTA, policy) == []


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, ProxyError(ErrorKind.SERVER, "Internal error encountered.")),
        (503, ProxyError(ErrorKind.OVERLOADED, "The model is overloaded.")),
        (403, ProxyError(ErrorKind.PERMISSION, "Cloud AI Companion API has not been used")),
        (400, ProxyError(ErrorKind.INVALID_REQUEST, "quota project invalid")),
    ],
)
def test_other_errors_get_no_fallback(status: int, error: ProxyError) -> None:
    assert quota_fallbacks(Candidate(CLI, ACCOUNT, "gemini-2.5-pro"), status, error, BOTH) == []


def test_a_429_parsed_from_a_code_assist_body_counts() -> None:
    error = parse_error(429, quota_body("Quota exceeded for quota metric 'Requests per day'"))
    found = quota_fallbacks(Candidate(CLI, ACCOUNT, "gemini-2.5-flash"), 429, error, BOTH)
    assert pairs(found)[0] == ("proj-b", "gemini-2.5-flash")


def test_an_error_object_with_code_429_counts_without_the_http_status() -> None:
    # An error that arrives inside a 200 stream carries its 429 in the body only.
    error = ProxyError(ErrorKind.RATE_LIMIT, "Resource has been exhausted", status=429)
    found = quota_fallbacks(Candidate(CLI, ACCOUNT, "gemini-3-pro-preview"), 200, error, BOTH)
    assert pairs(found) == [("proj-b", "gemini-3-pro-preview")]


def test_model_capacity_429_skips_projects_but_tries_previews() -> None:
    error = parse_error(429, quota_body("No capacity available for model gemini-2.5-pro"))
    found = quota_fallbacks(Candidate(CLI, ACCOUNT, "gemini-2.5-pro"), 429, error, BOTH)
    assert [model for _, model in pairs(found)] == [
        PRO_PREVIEWS[0],
        PRO_PREVIEWS[0],
        PRO_PREVIEWS[1],
        PRO_PREVIEWS[1],
    ]


def test_api_keys_and_local_providers_get_no_fallback() -> None:
    key = Credential("gemini-api-key[0]", "AIza-key", "http://127.0.0.1:1")
    assert (
        quota_fallbacks(Candidate(GeminiApiKeyProvider(), key, "gemini-2.5-pro"), 429, QUOTA, BOTH)
        == []
    )
    assert quota_fallbacks(Candidate(DemoProvider(), None, "demo-echo"), 429, QUOTA, BOTH) == []


def test_a_single_project_account_gets_previews_only() -> None:
    single = Credential("gemini-b.json", "tok", "", account={"project_id": "proj-1"})
    found = quota_fallbacks(Candidate(CLI, single, "gemini-2.5-flash-lite"), 429, QUOTA, BOTH)
    assert pairs(found) == [("proj-1", m) for m in PREVIEW_FALLBACKS["gemini-2.5-flash-lite"]]


def test_an_account_without_project_keeps_its_credential_for_previews() -> None:
    bare = Credential("gemini-c.json", "tok", "", account={"email": "c@example.com"})
    found = quota_fallbacks(Candidate(CLI, bare, "gemini-2.5-pro"), 429, QUOTA, BOTH)
    assert [c.upstream_model for c in found] == list(PRO_PREVIEWS)
    assert all(c.credential is bare for c in found)


def test_a_copy_pinned_to_one_project_still_switches_to_the_others() -> None:
    """The pool serves a multi-project account through whichever project is not resting; a
    quota error there still falls back to the account's other projects."""
    found = quota_fallbacks(Candidate(CLI, ACCOUNT, "gemini-2.5-pro"), 429, QUOTA, BOTH)
    pinned_b = found[0]
    assert pinned_b.credential is not None
    assert pinned_b.credential.account["project_id"] == "proj-b"
    again = quota_fallbacks(pinned_b, 429, QUOTA, BOTH)
    assert again[0].credential is not None
    assert (again[0].credential.account["project_id"], again[0].upstream_model) == (
        "proj-a",
        "gemini-2.5-pro",
    )


# ----- several projects in one auth file -------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("proj-a", ["proj-a"]),
        ("proj-a,proj-b", ["proj-a", "proj-b"]),
        (" proj-a , proj-b ,, proj-a ", ["proj-a", "proj-b"]),
        ("", []),
        (" , ", []),
    ],
)
def test_project_ids_split_the_comma_separated_field(raw: str, expected: list[str]) -> None:
    assert project_ids({"project_id": raw}) == expected


def test_project_ids_of_an_account_without_the_field() -> None:
    assert project_ids({"email": "x@example.com"}) == []


def envelope(credential: Credential, model: str = "gemini-2.5-pro") -> dict[str, Any]:
    ctx = RequestContext(False, {}, {}, "gemini")
    body: dict[str, object] = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    request = CLI.build_request(credential, model, body, ctx)
    parsed: dict[str, Any] = orjson.loads(request.body)
    return parsed


def test_a_multi_project_account_bills_its_first_project() -> None:
    assert active_project(ACCOUNT) == "proj-a"
    assert envelope(ACCOUNT)["project"] == "proj-a"


def test_a_project_fallback_bills_the_other_project() -> None:
    (fallback,) = quota_fallbacks(Candidate(CLI, ACCOUNT, "gemini-3-pro-preview"), 429, QUOTA, BOTH)
    assert fallback.credential is not None
    sent = envelope(fallback.credential, fallback.upstream_model)
    assert (sent["project"], sent["model"]) == ("proj-b", "gemini-3-pro-preview")


def test_an_account_without_project_sends_none() -> None:
    bare = Credential("gemini-c.json", "tok", "", account={"email": "c@example.com"})
    assert active_project(bare) == ""
    assert "project" not in envelope(bare)
