"""The confirmation and the controller's wait (item 5 of issue 12): confirm() checks the exit status of what it runs
(the systemd refresh timer path, replayed from recorded systemctl behaviour), and the action plugin waits from the
moment the rollback was armed and says "reverted" only after reading the host's own record of it."""
from __future__ import annotations

import base64
import json
import typing as t
from pathlib import Path

import pytest
from ansible.errors import AnsibleConnectionFailure
from ansible_collections.protectnet.epns.plugins.action import epns_firewall as action
from ansible_collections.protectnet.epns.plugins.module_utils._firewall import _refresh, _rollback
from ansible_collections.protectnet.epns.plugins.module_utils._firewall._model import FirewallError

# What systemctl answered on a Debian 12 host (exit status, stderr), per subcommand.
ENABLE_OK = (0, "Created symlink /etc/systemd/system/timers.target.wants/protectnet-epns-refresh.timer -> "
                "/etc/systemd/system/protectnet-epns-refresh.timer.\n")
ENABLE_MISSING = (1, "Failed to enable unit: Unit file protectnet-epns-refresh.timer does not exist.\n")


def _fake_systemctl(tmp_path: Path, enable: t.Tuple[int, str]) -> Path:
    """A systemctl that logs its arguments and replays the recorded answer of `enable`."""
    script = tmp_path / "systemctl"
    log = tmp_path / "systemctl.log"
    script.write_text("#!/bin/sh\n"
                      f'echo "$*" >> {log}\n'
                      f'if [ "$1" = enable ]; then printf %b {json.dumps(enable[1])} >&2; exit {enable[0]}; fi\n'
                      "exit 0\n")
    script.chmod(0o755)
    return script


def _timer_commands(monkeypatch: pytest.MonkeyPatch, systemctl: Path) -> t.List[t.Dict[str, t.Any]]:
    """The commands job_files gives the confirmation on a systemd host, with systemctl replaced by the fake."""
    monkeypatch.setattr(_refresh, "uses_systemd", lambda: True)
    _files, before, after = _refresh.job_files(True, {"backend": "nftables"}, "/usr/bin/python3", 15,
                                               sources={"_refresh.py": "", "_model.py": ""})
    assert before == []
    assert [c.argv for c in after] == [("/bin/systemctl", "daemon-reload"),
                                       ("/bin/systemctl", "enable", "--now", f"{_refresh.UNIT}.timer")]
    return [dict(c.as_dict(), argv=[str(systemctl), *c.argv[1:]]) for c in after]


def test_the_refresh_timer_enabled_on_confirmation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    systemctl = _fake_systemctl(tmp_path, ENABLE_OK)
    info = _rollback.arm([], [], 30, after=_timer_commands(monkeypatch, systemctl), base=str(tmp_path / "rb"))
    assert _rollback.confirm(info["token"], str(tmp_path / "rb"))["state"] == "confirmed"
    assert (tmp_path / "systemctl.log").read_text().splitlines() == [
        "daemon-reload", f"enable --now {_refresh.UNIT}.timer"]


def test_a_timer_that_fails_to_enable_is_an_error_not_confirmed(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    systemctl = _fake_systemctl(tmp_path, ENABLE_MISSING)
    info = _rollback.arm([], [], 30, after=_timer_commands(monkeypatch, systemctl), base=str(tmp_path / "rb"))
    with pytest.raises(FirewallError, match=r"the change was kept, but .*systemctl enable --now "
                                            r"protectnet-epns-refresh.timer failed \(exit status 1: Failed to enable "
                                            r"unit: Unit file protectnet-epns-refresh.timer does not exist.\)"):
        _rollback.confirm(info["token"], str(tmp_path / "rb"))
    # kept: the watchdog does not revert a change whose confirmation won
    assert _rollback.status(info["token"], str(tmp_path / "rb"))["state"] == "confirmed"


# -- the action plugin's wait -----------------------------------------------------------------------------------------
class Clock:
    """time.monotonic/time.sleep of the action plugin, without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0)


class Host:
    """The host as the action plugin sees it: the apply takes apply_seconds, new sessions are refused until
    open_at (the revert), and the rollback record is `record` once written."""

    def __init__(self, clock: Clock, apply_seconds: float, open_at: float, record: t.Optional[t.Dict[str, t.Any]],
                 confirm_result: t.Optional[t.Dict[str, t.Any]] = None) -> None:
        self.clock, self.apply_seconds, self.open_at, self.record = clock, apply_seconds, open_at, record
        self.confirm_result = confirm_result
        self.reads: t.List[float] = []
        self.armed_at = 0.0

    def reset(self) -> None:
        pass

    def execute(self, module_name: str, module_args: t.Dict[str, t.Any], task_vars: t.Any = None) -> t.Any:
        if module_name == action.MODULE:
            self.clock.now += self.apply_seconds
            self.armed_at = self.clock.now  # armed at the very end of the apply
            self.clock.now += 0.5
            return {"changed": True, "rollback": {"token": "T", "seconds": 5, "directory": "/run/rb/T"}}
        if module_name == action.CONFIRM and self.confirm_result is not None:
            return self.confirm_result
        if self.clock.now < self.open_at:
            raise AnsibleConnectionFailure("ssh: connect to host agent1 port 22: Connection timed out")
        assert module_name == "ansible.builtin.slurp" and module_args == {"src": "/run/rb/T/result.json"}
        self.reads.append(self.clock.now)
        if self.record is None:
            return {"failed": True, "msg": "file not found: /run/rb/T/result.json"}
        return {"content": base64.b64encode(json.dumps(self.record).encode()).decode(), "encoding": "base64"}


def _run(monkeypatch: pytest.MonkeyPatch, host: Host, clock: Clock) -> t.Dict[str, t.Any]:
    monkeypatch.setattr(action, "time", clock)
    monkeypatch.setattr(action.ActionBase, "run", lambda self, tmp=None, task_vars=None: {})
    plugin = action.ActionModule.__new__(action.ActionModule)
    plugin._task = t.cast(t.Any, type("Task", (), {"args": {"rollback_seconds": 5}})())
    plugin._connection = t.cast(t.Any, host)
    plugin._execute_module = host.execute  # type: ignore[method-assign]
    return plugin.run(task_vars={})


REVERTED = {"reverted_at": 0, "ok": True, "results": [{"argv": ["nft", "-f", "-"], "rc": 0, "stderr": ""}]}


def test_waits_from_the_arming_and_says_reverted_after_reading_the_hosts_record(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    # a slow apply (a firewalld reload): the host's deadline is 5 s after its end, not after the task's start
    host = Host(clock, apply_seconds=12, open_at=1000 + 12 + 5, record=REVERTED)
    result = _run(monkeypatch, host, clock)
    assert result["failed"] is True and result["rolled_back"] is True
    assert host.reads and host.reads[0] >= host.armed_at + 5
    assert result["rollback"]["state"] == "reverted"
    assert result["rollback"]["result"] == REVERTED
    assert "as its own record says" in result["msg"] and "rolled back" in result["msg"]


def test_an_unreadable_record_is_not_called_reverted(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    host = Host(clock, apply_seconds=1, open_at=float("inf"), record=None)
    result = _run(monkeypatch, host, clock)
    assert result["failed"] is True
    assert result["rollback"]["state"] == "unverified"
    assert "unverified" in result["msg"] and "/run/rb/T/result.json" in result["msg"]
    assert "restored its previous" not in result["msg"]


def test_a_failed_revert_says_what_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    failed = {"ok": False, "results": [{"argv": ["nft", "-f", "-"], "rc": 1, "stderr": "Error: No such file"}]}
    host = Host(clock, apply_seconds=1, open_at=1000 + 6.5, record=failed)
    result = _run(monkeypatch, host, clock)
    assert result["rollback"]["state"] == "revert_failed"
    assert "nft -f - exited 1: Error: No such file" in result["msg"]


def test_kept_but_incomplete_is_not_reported_as_rolled_back(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    kept = {"failed": True, "kept": True, "msg": "the change was kept, but /bin/systemctl enable --now "
                                                 "protectnet-epns-refresh.timer failed (exit status 1)"}
    host = Host(clock, apply_seconds=1, open_at=0, record=None, confirm_result=kept)
    result = _run(monkeypatch, host, clock)
    assert result["failed"] is True and not result.get("rolled_back")
    assert result["rollback"]["state"] == "confirmed"
    assert result["msg"] == kept["msg"]
