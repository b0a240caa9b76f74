"""One simulator per test module: starting uvicorn costs ~50 ms, the tests reset its state instead."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from llmrelay.simulator import Simulator, serve_in_thread


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    """One pooled client: a fresh ``httpx.post`` builds an SSL context each time (~0.1 s)."""
    with httpx.Client(timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def sim_server() -> Iterator[tuple[str, Simulator]]:
    sim = Simulator(seed=0)
    with serve_in_thread(app=sim) as url:
        yield url, sim


@pytest.fixture
def sim_url(sim_server: tuple[str, Simulator], http: httpx.Client) -> Iterator[str]:
    url, _ = sim_server
    http.post(f"{url}/_sim/reset")
    http.delete(f"{url}/_sim/faults")
    yield url


@pytest.fixture
def sim(sim_server: tuple[str, Simulator], sim_url: str) -> Simulator:
    return sim_server[1]
