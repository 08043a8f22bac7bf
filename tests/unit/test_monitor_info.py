"""epns_monitor_info reads back what the runner recorded (the fleet report's "last seen working"): after real runs
against loopback peers, with no monitor installed, and with a state directory it may not read."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import typing as t
from pathlib import Path

import pytest
from _monitor_peers import runner_config
from ansible_collections.protectnet.epns.plugins.module_utils._monitor import _runner
from ansible_collections.protectnet.epns.plugins.modules import epns_monitor_info as module

COLLECTIONS = Path(__file__).resolve().parents[2] / ".build" / "collections"


@pytest.fixture
def broker(lo: t.Any, pki: t.Any, servers: list) -> t.Any:
    server = lo.LoopbackServer(lo.mqtt_broker(), lo.tls_server_context(pki.server_cert, pki.server_key))
    servers.append(server)
    return server


def run(config: Path, now: float, mode: str) -> None:
    _runner.run_once(_runner.load_config(str(config)), mode, lambda: now)


def test_last_working_is_the_newest_success_of_any_path(run_module: t.Any, tmp_path: Path, pki: t.Any,
                                                        lo: t.Any, broker: t.Any) -> None:
    config = runner_config(tmp_path, pki, broker.port, lo.free_port())
    run(config, 1_700_000_000.0, "tcp_tls")
    gone = [lo.free_port(), lo.free_port()]
    config = runner_config(tmp_path, pki, *gone)  # same state directory; nothing answers any more
    run(config, 1_700_000_900.0, "tcp_tls")
    seen = run_module(module, {"state_dir": str(tmp_path / "state")}, check=True)
    assert seen["changed"] is False and seen["installed"] and seen["readable"]
    assert seen["last_run"] == 1_700_000_900.0 and seen["last_mode"] == "tcp_tls"
    assert seen["last_verdict"] == "unreachable"
    assert seen["last_working"] == 1_700_000_000.0
    by_port = {p["port"]: (p["via"], p["last_success"]) for p in seen["paths"]}
    assert by_port[str(broker.port)] == ("direct", 1_700_000_000.0)
    assert by_port[str(gone[0])] == ("direct", None) and by_port[str(gone[1])] == ("direct", None)
    assert seen["history_lines"] == 2 and seen["runs_skipped_total"] == 0


@pytest.mark.parametrize("make", [False, True], ids=["no directory", "empty directory"])
def test_a_host_without_the_monitor_is_not_an_error(run_module: t.Any, tmp_path: Path, make: bool) -> None:
    state = tmp_path / "state"
    if make:
        state.mkdir()
    seen = run_module(module, {"state_dir": str(state)})
    assert seen["installed"] is False and seen["readable"] is True and seen["last_working"] is None
    assert not seen.get("failed")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the reader as another user")
@pytest.mark.parametrize("blocked", ["state", "parent"])
def test_an_unreadable_state_directory_says_why(blocked: str) -> None:
    """Neither a closed state directory nor a closed parent passes for "no monitor here"."""
    base = Path(tempfile.mkdtemp(prefix="pn-monitor-info-"))  # pytest's own tmp root is closed to other users
    try:
        state = base / "state"
        state.mkdir(mode=0o700)
        (state / "state.json").write_text("{}")
        os.chmod(base, 0o700 if blocked == "parent" else 0o755)
        seen = _read_as_nobody(state)
    finally:
        shutil.rmtree(base)
    assert seen["readable"] is False and "Permission denied" in seen["reason"] and "become" in seen["reason"]
    assert seen["installed"] is False


def _read_as_nobody(state: Path) -> t.Dict[str, t.Any]:
    code = ("import json, sys; from ansible_collections.protectnet.epns.plugins.module_utils._monitor._last "
            "import last_seen; print(json.dumps(last_seen(sys.argv[1])))")
    done = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable,
                           "-c", code, str(state)], capture_output=True, text=True, check=False,
                          env=dict(os.environ, PYTHONPATH=str(COLLECTIONS)))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
