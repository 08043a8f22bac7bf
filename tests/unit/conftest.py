"""Shared test set-up: the markers, the guards every unit test runs under (no real nameservers, no file of
this machine changed) and the fixtures of the helper modules next to it (_loopback: the probe's loopback peers).
"""
from __future__ import annotations

import os
import sys
import typing as t
from pathlib import Path

import pytest

# `ansible-test units` imports test files as packages of the collection and uses its own pytest configuration:
# keep the helper modules next to the tests (_fake_eset, test_firewall_backends, ...) importable by their plain
# names, and declare the markers pyproject.toml declares for a plain pytest run.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _host_files import host_files
from _loopback import lo, pki, servers  # noqa: F401 (fixtures, registered by being imported here)
from _module_run import run_module  # noqa: F401 (the fixture, for every unit test)
from _server_pki import agent_port, spki  # noqa: F401 (the ESET PROTECT server stand-in, for the server path)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lab: needs root and builds the network-namespace lab")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.fixture(autouse=True)
def _no_real_nameservers(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a failed lookup the probe asks the nameservers of resolv.conf itself: in unit tests it finds none,
    unless a test points it at its own loopback server."""
    from ansible_collections.protectnet.epns.plugins.module_utils._probe import _dns
    monkeypatch.setattr(_dns, "RESOLV_CONF", os.devnull)


@pytest.fixture(autouse=True)
def _host_files_untouched() -> t.Iterator[None]:
    before = host_files()
    yield
    after = host_files()
    changed = sorted(n for n in set(before) | set(after) if before.get(n) != after.get(n))
    assert not changed, f"the test changed files of this machine: {changed}"




@pytest.fixture
def firewalld_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """firewalld's configuration directory (policies/, ipsets/) in tmp_path, for the firewalld backend tests."""
    from ansible_collections.protectnet.epns.plugins.module_utils._firewall import _firewalld

    for sub in ("policies", "ipsets"):
        (tmp_path / sub).mkdir()
    monkeypatch.setattr(_firewalld, "CONFIG_DIR", str(tmp_path))
    return tmp_path
