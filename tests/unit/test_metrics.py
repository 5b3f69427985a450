"""The metrics observer on its own: bounded model labels (following registry swaps), which
attempts count as upstream errors, and token refreshes counted from the real refresher."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cliproxy.auth.refresher import AccountNeedsLogin, Refresher, RefreshFailed
from cliproxy.auth.store import AuthStore
from cliproxy.usage.events import AttemptOutcome, RequestOutcome
from cliproxy.usage.metrics import Metrics
from cliproxy.usage.observers import Observers
from tests.simulators.oauth_sim import (  # noqa: F401 (pytest fixtures)
    OAuthSim,
    oauth_sim_fixture,
    oauth_sim_server_fixture,
)


class Listing:
    def __init__(self, *names: str) -> None:
        self.names = set(names)

    def model(self, name: str) -> object | None:
        return name if name in self.names else None


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def request(model: str, **fields: object) -> RequestOutcome:
    values: dict = {
        "client_key": "",
        "client_protocol": "openai_chat",
        "upstream_protocol": "openai_chat",
        "requested_model": model,
        "upstream_model": model,
        "credential_id": "k",
        "provider": "p",
        "path": "pass-through",
        "stream": False,
        "status": 200,
        "error_kind": None,
        "ending": "completed",
        "input_tokens": 1,
        "output_tokens": 1,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
        "latency": 0.5,
        "first_token": None,
        "attempts": 1,
        "bytes_out": 10,
        **fields,
    }
    for field in dataclasses.fields(RequestOutcome):  # fields added later keep their zero
        if field.name not in values and field.default is dataclasses.MISSING:
            values[field.name] = None
    return RequestOutcome(**values)


def attempt(status: int, **fields: object) -> AttemptOutcome:
    values: dict = {
        "credential_id": "k",
        "provider": "p",
        "upstream_model": "m",
        "requested_model": "m",
        "status": status,
        "error_kind": None,
        "latency": 0.1,
        "number": 1,
        **fields,
    }
    return AttemptOutcome(**values)


def requests_of(metrics: Metrics, model: str) -> float:
    key = frozenset(
        {"protocol": "openai_chat", "model": model, "provider": "p", "status": "200"}.items()
    )
    return samples(metrics).get(("cliproxy_requests_total", key), 0.0)


def test_model_labels_follow_the_registry() -> None:
    current = [Listing("known")]
    metrics = Metrics(lambda: current[0])
    for name in ("known", "unknown-1", "unknown-2", ""):
        metrics.on_request(request(name))
    assert requests_of(metrics, "known") == 1
    assert requests_of(metrics, "other") == 3
    # A reload lists the model that was unknown; the label cache starts over with it.
    current[0] = Listing("known", "unknown-1")
    metrics.on_request(request("unknown-1"))
    assert requests_of(metrics, "unknown-1") == 1


def test_many_odd_names_keep_one_series() -> None:
    metrics = Metrics(lambda: Listing())
    for index in range(10_000):
        metrics.on_request(request(f"odd-{index}"))
    series = [key for key in samples(metrics) if key[0] == "cliproxy_requests_total"]
    assert len(series) == 1
    assert requests_of(metrics, "other") == 10_000


def test_upstream_errors_count_failures_and_connection_errors_only() -> None:
    metrics = Metrics(lambda: Listing())
    metrics.on_attempt(attempt(200))
    metrics.on_attempt(attempt(429))
    metrics.on_attempt(attempt(0))  # no answer came
    metrics.on_attempt(attempt(0, sent=False, refused=True))  # never sent
    found = {
        dict(labels)["status"]: v
        for (name, labels), v in samples(metrics).items()
        if name == "cliproxy_upstream_errors_total"
    }
    assert found == {"429": 1, "0": 1}


@pytest.fixture
async def counted(tmp_path: Path, oauth_sim: OAuthSim) -> AsyncIterator[tuple[Refresher, Metrics]]:
    hub = Observers()
    metrics = Metrics(lambda: Listing(), {"gemini": "gemini-cli", "codex": "codex"})
    hub.subscribe(metrics)
    refresher = Refresher(
        AuthStore(tmp_path), flows=oauth_sim.flows(), retry_delay=60, report=hub.emit
    )
    yield refresher, metrics
    await refresher.close()


def _add(refresher: Refresher, sim: OAuthSim, style: str) -> str:
    name = f"{style}.json"
    raw = sim.auth_file(style, expires_in=60)
    (refresher.store.auth_dir / name).write_bytes(orjson.dumps(raw))
    refresher.store.load()
    return name


def refreshes(metrics: Metrics) -> dict[tuple[str, str], float]:
    return {
        (dict(labels)["provider"], dict(labels)["result"]): v
        for (name, labels), v in samples(metrics).items()
        if name == "cliproxy_token_refreshes_total"
    }


async def test_token_refreshes_are_counted_by_result(
    counted: tuple[Refresher, Metrics], oauth_sim: OAuthSim
) -> None:
    refresher, metrics = counted
    gemini = _add(refresher, oauth_sim, "gemini")
    codex = _add(refresher, oauth_sim, "codex")
    await refresher.refresh(gemini)
    oauth_sim.fail_token_with.append(503)
    with pytest.raises(RefreshFailed):
        await refresher.refresh(codex)
    record = refresher.store.get(codex)
    assert record is not None
    oauth_sim.revoke(record.refresh_token)
    with pytest.raises(AccountNeedsLogin):
        await refresher.refresh(codex)
    assert refreshes(metrics) == {
        ("gemini-cli", "ok"): 1,
        ("codex", "failed"): 1,
        ("codex", "needs_login"): 1,
    }
