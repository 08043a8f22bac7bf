"""Fixtures for tests that need the namespace lab (tests/lab): built once per session, torn down always."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

LAB_DIR = Path(__file__).resolve().parent.parent / "lab"
if str(LAB_DIR) not in sys.path:
    sys.path.insert(0, str(LAB_DIR))

from pnlab import Lab  # noqa: E402

LAB_AGENTS = int(os.environ.get("PNLAB_AGENTS", "3"))
# lan2 behind pn-router2 (one more agent, in inventory group wol_agents only) for the Wake-on-LAN tests.
LAB_WOL = os.environ.get("PNLAB_WOL", "1") != "0"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the lab must say so with the `lab` marker, so that `pytest -m "not lab"` runs without root."""
    unmarked = [item.nodeid for item in items
                if "lab" in getattr(item, "fixturenames", ()) and item.get_closest_marker("lab") is None]
    if unmarked:
        raise pytest.UsageError("these tests use the lab fixture without the lab marker (pytestmark = "
                                f"pytest.mark.lab): {', '.join(unmarked)}")


def _needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("the namespace lab needs root (network namespaces, mounts, nftables in the lab)")


_SESSION_LAB: list[Lab] = []


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """The running lab. The context manager tears it down on failure, Ctrl-C and SIGTERM/SIGHUP as well."""
    _needs_root()
    with Lab(agents=LAB_AGENTS, wol=LAB_WOL) as running:
        _SESSION_LAB.append(running)
        yield running
        _SESSION_LAB.clear()


@pytest.fixture(scope="module", autouse=True)
def _lab_up_for_each_module() -> None:
    """A module's own fixtures may use the lab before any test runs: a lab that an earlier module's lifecycle
    tests left down is rebuilt first. Module-scoped autouse fixtures run before the module's other fixtures."""
    if _SESSION_LAB and not _SESSION_LAB[0].is_up:
        _SESSION_LAB[0].up()


@pytest.fixture(autouse=True)
def _healthy_lab_between_tests(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every lab test starts and ends on the healthy path; tests that do not use the lab are untouched.

    A test that takes the session lab down (the lifecycle tests do) leaves it for the next one to rebuild.
    """
    if "lab" in request.fixturenames:
        running = request.getfixturevalue("lab")
        if not running.is_up:
            running.up()
    yield
    if "lab" in request.fixturenames:
        running = request.getfixturevalue("lab")
        if running.is_up:
            running.reset()


@pytest.fixture
def healthy_lab(lab: Lab) -> Lab:
    """Explicit form, for tests that want a clean lab before they start too."""
    lab.reset()
    return lab
