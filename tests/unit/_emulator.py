"""The ESET PROTECT emulator (tests/emulator) for unit tests that run a module in-process against it: importing
this skips the test file where the emulator is not there (ansible-test units copies only tests/unit)."""
from __future__ import annotations

import sys
import typing as t
from pathlib import Path

import pytest
from _module_run import ModuleRun

TESTS = Path(__file__).resolve().parents[1]
if not (TESTS / "emulator" / "server.py").exists():
    pytest.skip("the emulator (tests/emulator) is not here", allow_module_level=True)
sys.path.insert(0, str(TESTS))
from emulator import DEFAULT_USERS, Emulator, group_uuid  # noqa: E402
from emulator.client import connection, control  # noqa: E402

__all__ = ["PASSWORD", "TESTS", "Emulator", "connection", "control", "emulator_fixture", "group_uuid", "reset",
           "scanned"]

PASSWORD = DEFAULT_USERS["api-user"]
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")


def emulator_fixture(*deployments: str) -> t.Any:
    """A module-scoped `emulator` fixture: one running emulator for each deployment given ("onprem", "cloud"),
    so the module's tests run once per deployment. Use it as `emulator = emulator_fixture("onprem", "cloud")`."""

    @pytest.fixture(scope="module", params=list(deployments))
    def emulator(request: pytest.FixtureRequest) -> t.Iterator[Emulator]:
        with Emulator(request.param) as running:
            yield running

    return emulator


def reset(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """The emulator in its seed state, reached directly (no proxy from the environment in between)."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    control(emulator, "POST", "reset")
    return emulator


def scanned(run_module: ModuleRun) -> ModuleRun:
    """The shared run_module fixture for API modules: with --diff, and failing the test if any output showed the
    API password."""
    run_module.diff = True
    run_module.never_prints(PASSWORD)
    return run_module
