"""epns_monitor_runner on this machine, with every path under a temporary directory: check and diff mode, the files
and their modes and owners, the copied runner running without Ansible, idempotence, absent leaving nothing, the
hardened unit accepted by systemd-analyze verify, and bad input refused with a message."""
from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import typing as t
from pathlib import Path

import pytest
from _monitor_peers import samples, value
from ansible_collections.protectnet.epns.plugins.module_utils._monitor import _install
from ansible_collections.protectnet.epns.plugins.modules import epns_monitor_runner as module

USER = "nobody"


@pytest.fixture
def paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> t.Dict[str, t.Any]:
    root = tmp_path / "host"
    (root / "etc" / "cron.d").mkdir(parents=True)
    (root / "etc" / "systemd" / "system").mkdir(parents=True)
    monkeypatch.setattr(_install, "UNIT_DIR", str(root / "etc" / "systemd" / "system"))
    monkeypatch.setattr(_install, "CRON_FILE", str(root / "etc" / "cron.d" / "protectnet_epns_monitor"))
    monkeypatch.setattr(_install, "SYSTEMD_RUNTIME", str(root / "run" / "systemd" / "system"))
    return {"root": root, "args": {"user": USER, "prefix": str(root / "opt" / "protectnet-epns"),
                                   "config_dir": str(root / "etc" / "protectnet-epns"),
                                   "state_dir": str(root / "var" / "lib" / "protectnet-epns"),
                                   "textfile_dir": str(root / "var" / "lib" / "node-exporter")}}


def tree(root: Path) -> t.List[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_check_mode_plans_the_install_and_changes_nothing(run_module: t.Any, paths: t.Dict[str, t.Any]) -> None:
    empty = tree(paths["root"])
    result = run_module(module, dict(paths["args"], scheduler="cron"), check=True, diff=True)
    assert result["changed"] is True and result["scheduler"] == "cron"
    assert result["before"] == {"installed": False, "scheduler": None, "files": [], "dirs": []}
    assert result["after"]["installed"] is True and _install.CRON_FILE in result["after"]["files"]
    actions = {f["path"]: f["action"] for f in result["files"]}
    assert actions[paths["args"]["prefix"] + "/bin/epns-probe"] == "created"
    assert actions[paths["args"]["prefix"] + "/lib/protectnet_epns/_probe/_engine.py"] == "created"
    assert not any("_install.py" in path or "_firewall" in path for path in actions)
    assert any(d["after"].startswith("(runner code, ") for d in result["diff"])
    assert tree(paths["root"]) == empty


def test_the_cron_install_runs_as_the_user_keeps_modes_and_goes_without_a_trace(
        run_module: t.Any, paths: t.Dict[str, t.Any], tmp_path: Path, pki: t.Any, lo: t.Any, servers: list) -> None:
    empty = tree(paths["root"])
    server = lo.LoopbackServer(lo.mqtt_broker(), lo.tls_server_context(pki.server_cert, pki.server_key))
    servers.append(server)
    args = dict(paths["args"], scheduler="cron", jitter_seconds=120, probe={
        "host": "127.0.0.1", "server_name": "epns.eset.com", "ca_path": str(pki.ca), "primary_port": server.port,
        "fallback_port": lo.free_port(), "timeout": 4.0, "connect_timeout": 1.0})
    first = run_module(module, args)
    assert first["changed"] is True and first["commands"] == []
    prefix, config_dir, state_dir = (Path(args[k]) for k in ("prefix", "config_dir", "state_dir"))
    entry = _install.CRON_FILE
    assert Path(entry).read_text().splitlines()[-1] == \
        f"*/15 * * * * {USER} {prefix}/bin/epns-probe --once --quiet --jitter 120"
    nobody = pwd.getpwnam(USER)
    config = config_dir / "monitor.json"
    assert (stat.S_IMODE(config.stat().st_mode), config.stat().st_gid) == (0o640, nobody.pw_gid)
    assert stat.S_IMODE((prefix / "bin" / "epns-probe").stat().st_mode) == 0o755
    assert (stat.S_IMODE(state_dir.stat().st_mode), state_dir.stat().st_uid) == (0o750, nobody.pw_uid)
    assert json.loads(config.read_text())["probe"]["primary_port"] == server.port
    again = run_module(module, args)
    assert again["changed"] is False and again["files"] == [], again["files"]
    # the copy runs without Ansible, from its own directory
    done = subprocess.run([str(prefix / "bin" / "epns-probe"), "--once", "--mode", "tcp_tls"], capture_output=True,
                          text=True, timeout=60, cwd="/", check=False)
    assert done.returncode == 0, done.stderr
    assert "EPNS 127.0.0.1: reachable (tcp_tls)" in done.stdout
    prom = Path(args["textfile_dir"]) / "epns.prom"
    assert value(samples(prom), "epns_path_up", port=str(server.port)) == 1
    config.chmod(0o600)
    changed = run_module(module, dict(args, history_keep=20))
    assert [f["path"] for f in changed["files"]] == [str(config)]
    assert stat.S_IMODE(config.stat().st_mode) == 0o600  # a rewrite keeps the mode found
    gone = run_module(module, dict(paths["args"], state="absent"), diff=True)
    assert gone["changed"] is True and gone["after"]["installed"] is False
    assert str(prom) in {f["path"] for f in gone["files"]}
    assert tree(paths["root"]) == empty
    assert run_module(module, dict(paths["args"], state="absent"))["changed"] is False


def test_the_systemd_install_enables_the_timer_and_absent_disables_it(
        run_module: t.Any, paths: t.Dict[str, t.Any], monkeypatch: pytest.MonkeyPatch) -> None:
    os.makedirs(_install.SYSTEMD_RUNTIME)
    ran: t.List[t.List[str]] = []

    def run_command(self: t.Any, args: t.Any, **kwargs: t.Any) -> t.Tuple[int, str, str]:
        ran.append(list(args))
        return 0, "", ""

    monkeypatch.setattr(module.AnsibleModule, "run_command", run_command)
    result = run_module(module, paths["args"])
    assert result["scheduler"] == "systemd"
    assert [c["argv"] for c in result["commands"]] == ran == [
        ["/bin/systemctl", "daemon-reload"], ["/bin/systemctl", "enable", "--now", "protectnet-epns-monitor.timer"]]
    unit = Path(_install.UNIT_DIR, "protectnet-epns-monitor.service").read_text()
    for line in (f"User={USER}", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                 f"ReadWritePaths={paths['args']['state_dir']} {paths['args']['textfile_dir']}"):
        assert line in unit.splitlines(), line
    timer = Path(_install.UNIT_DIR, "protectnet-epns-monitor.timer").read_text()
    assert "OnUnitActiveSec=15min" in timer and "RandomizedDelaySec=300" in timer
    assert not Path(_install.CRON_FILE).exists()
    ran.clear()
    gone = run_module(module, dict(paths["args"], state="absent"))
    assert ran == [["/bin/systemctl", "disable", "--now", "protectnet-epns-monitor.timer"],
                   ["/bin/systemctl", "daemon-reload"]], gone
    assert not list(Path(_install.UNIT_DIR).iterdir())


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_unit_and_the_timer(tmp_path: Path) -> None:
    prefix = tmp_path / "opt"
    # systemd refuses "nobody" as a service user (not safe: it owns whatever NFS maps to it); any other one will do
    settings = _install.Settings(user="daemon", prefix=str(prefix), state_dir=str(tmp_path / "state"),
                                 textfile_dir=str(tmp_path / "textfile"))
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "epns-probe").write_text(_install.entry_script(settings))
    (prefix / "bin" / "epns-probe").chmod(0o755)
    for name in ("state", "textfile"):
        (tmp_path / name).mkdir()
    units = tmp_path / "units"
    units.mkdir()
    (units / f"{_install.UNIT}.service").write_text(_install.service_unit(settings))
    (units / f"{_install.UNIT}.timer").write_text(_install.timer_unit(settings, 15))
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(units / f"{_install.UNIT}.service"),
                           str(units / f"{_install.UNIT}.timer")], capture_output=True, text=True, timeout=60,
                          check=False, env=dict(os.environ, SYSTEMD_LOG_LEVEL="notice"))
    complaints = [line for line in (done.stdout + done.stderr).splitlines() if _install.UNIT in line]
    assert done.returncode == 0 and not complaints, done.stdout + done.stderr


@pytest.mark.parametrize("change, said", [
    ({"interval_minutes": 10}, "interval_minutes: 10 is under 15 minutes"),
    ({"interval_minutes": 25}, "interval_minutes: 25 cannot be kept evenly"),
    ({"mqtt_every_minutes": 30}, "mqtt_every_minutes: 30 is under 60 minutes"),
    ({"hold_seconds": 4000}, "hold_seconds: 4000 is out of range"),
    ({"keepalive_seconds": 1000}, "keepalive_seconds: 1000 is out of range"),
    ({"probe": {"mqtt_client_id": "agent"}}, "probe options mqtt_client_id are not accepted"),
    ({"probe": {"proxies": ["https://p:3128"]}}, "only plain HTTP proxies"),
    ({"user": "no-such-user-here"}, "user: 'no-such-user-here' does not exist"),
    ({"scheduler": "systemd"}, "this host does not run systemd"),
])
def test_bad_input_is_refused_with_a_message_and_nothing_changes(
        run_module: t.Any, paths: t.Dict[str, t.Any], change: t.Dict[str, t.Any], said: str) -> None:
    empty = tree(paths["root"])
    result = run_module(module, dict(paths["args"], **change))
    assert result.get("failed") and said in result["msg"], result["msg"]
    assert tree(paths["root"]) == empty


def test_a_textfile_directory_the_user_cannot_write_is_refused(run_module: t.Any, paths: t.Dict[str, t.Any]) -> None:
    textfile = Path(paths["args"]["textfile_dir"])
    textfile.mkdir(parents=True)
    textfile.chmod(0o755)
    result = run_module(module, dict(paths["args"], scheduler="cron"))
    assert result.get("failed") and f"user {USER!r} cannot create files in it" in result["msg"], result["msg"]
    os.chown(textfile, -1, grp.getgrgid(pwd.getpwnam(USER).pw_gid).gr_gid)
    textfile.chmod(0o775)
    assert not run_module(module, dict(paths["args"], scheduler="cron")).get("failed")
