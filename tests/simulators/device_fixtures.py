"""Pytest fixtures for the device-login vendors (Kimi, xAI): one simulator per session, reset
before each test, with the environment pointing cliproxy's flows and accounts at it.

    from tests.simulators.device_fixtures import _kimi_server, _xai_server, kimi, xai
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

import pytest

from .kimi_sim import KimiSim
from .xai_sim import XaiSim

Sim = TypeVar("Sim", KimiSim, XaiSim)


def _pointed(sim: Sim, monkeypatch: pytest.MonkeyPatch) -> Sim:
    sim.reset()
    for name, value in sim.env().items():
        monkeypatch.setenv(name, value)
    return sim


@pytest.fixture(scope="session")
def _kimi_server() -> Iterator[KimiSim]:
    with KimiSim() as sim:
        yield sim


@pytest.fixture(scope="session")
def _xai_server() -> Iterator[XaiSim]:
    with XaiSim() as sim:
        yield sim


@pytest.fixture
def kimi(_kimi_server: KimiSim, monkeypatch: pytest.MonkeyPatch) -> KimiSim:
    return _pointed(_kimi_server, monkeypatch)


@pytest.fixture
def xai(_xai_server: XaiSim, monkeypatch: pytest.MonkeyPatch) -> XaiSim:
    return _pointed(_xai_server, monkeypatch)
