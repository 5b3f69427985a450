"""The OpenAPI document is valid, names every route, and schemathesis finds no 5xx with it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from cliproxy.config import load_config
from cliproxy.management.openapi import build_document
from tests.management.conftest import management_mount, write_config
from tests.proxy_server import ProxyServer

PASSWORD = "fuzz-password"


@pytest.fixture(scope="module")
def fuzz_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    # The env password keeps the API reachable whatever the fuzzer writes into config.yaml
    # (an empty file drops the secret-key).
    previous = os.environ.get("MANAGEMENT_PASSWORD")
    os.environ["MANAGEMENT_PASSWORD"] = PASSWORD
    path: Path = write_config(tmp_path_factory.mktemp("fuzz"))
    try:
        with ProxyServer(load_config(path), config_path=path) as server:
            yield server
    finally:
        if previous is None:
            os.environ.pop("MANAGEMENT_PASSWORD", None)
        else:
            os.environ["MANAGEMENT_PASSWORD"] = previous


def test_document_lists_every_route(fuzz_proxy: ProxyServer) -> None:
    reply = httpx.get(
        fuzz_proxy.base_url + "/v0/management/openapi.json",
        headers={"authorization": f"Bearer {PASSWORD}"},
    )
    assert reply.status_code == 200
    document = reply.json()
    assert document["openapi"].startswith("3.")
    mount = management_mount(fuzz_proxy.app)
    for route in mount.routes:
        for method in route.methods - {"HEAD"}:  # type: ignore[attr-defined]
            assert method.lower() in document["paths"][route.path], (method, route.path)  # type: ignore[attr-defined]
    assert "/claude-api-key" in document["paths"]
    assert "/routing/strategy" in document["paths"]


SCHEMA = schemathesis.openapi.from_dict(build_document())
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors_on_generated_input(fuzz_proxy: ProxyServer, mode: GenerationMode) -> None:
    base_url = fuzz_proxy.base_url + "/v0/management"
    failures: list[str] = []
    for operation in OPERATIONS:

        @settings(
            max_examples=4,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: schemathesis.Case) -> None:
            response = case.call(base_url=base_url, headers={"Authorization": f"Bearer {PASSWORD}"})
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.path} -> {response.status_code}: {response.text[:200]}"
                )

        run()
    assert not failures, "\n".join(failures)
