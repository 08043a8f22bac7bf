"""Rollback unless confirmed: the detached watchdog reverts at the deadline; a confirmation in time stops it
and writes the pending files. Exactly one of the two wins."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from ansible_collections.protectnet.epns.plugins.module_utils._firewall import _rollback
from ansible_collections.protectnet.epns.plugins.module_utils._firewall._model import FirewallError
from ansible_collections.protectnet.epns.plugins.module_utils._host._run import Command


def _wait_for(path: Path, seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.05)
    return False


def test_no_confirmation_reverts(tmp_path: Path) -> None:
    marker = tmp_path / "reverted-marker"
    revert = Command((sys.executable, "-c", "import sys; open(sys.argv[1], 'w').write(sys.stdin.read())",
                      str(marker)), "previous state\n")
    info = _rollback.arm([revert], [{"path": str(tmp_path / "persisted"), "content": "x", "mode": 0o644}], 1,
                         base=str(tmp_path / "rb"))
    assert _rollback.pending(str(tmp_path / "rb")) == [info["token"]]
    assert _wait_for(tmp_path / "rb" / info["token"] / "reverted")
    assert marker.read_text() == "previous state\n"
    assert not (tmp_path / "persisted").exists()
    status = _rollback.status(info["token"], str(tmp_path / "rb"))
    assert status["state"] == "reverted" and status["result"]["ok"] is True
    with pytest.raises(FirewallError, match="too late to confirm"):
        _rollback.confirm(info["token"], str(tmp_path / "rb"))


def test_confirmation_in_time_keeps_the_change_and_writes_the_files(tmp_path: Path) -> None:
    marker = tmp_path / "reverted-marker"
    info = _rollback.arm([Command(("touch", str(marker)))],
                         [{"path": str(tmp_path / "etc" / "persisted"), "content": "kept\n", "mode": 0o600}], 2,
                         base=str(tmp_path / "rb"))
    result = _rollback.confirm(info["token"], str(tmp_path / "rb"))
    assert result["state"] == "confirmed"
    assert (tmp_path / "etc" / "persisted").read_text() == "kept\n"
    time.sleep(2.5)
    assert not marker.exists()
    assert _rollback.pending(str(tmp_path / "rb")) == []


@pytest.mark.parametrize("value", [0, 2, 3601, "soon"])
def test_seconds_out_of_range(value: object) -> None:
    with pytest.raises(FirewallError, match="rollback_seconds"):
        _rollback.check_seconds(value)
