"""The monitor runner against real loopback peers: the schedule's modes, the metrics file as Prometheus's own
parser reads it, the history, the lock and its skip counter, and the command line's exit codes."""
from __future__ import annotations

import hashlib
import json
import os
import typing as t
from pathlib import Path

import pytest
from _monitor_peers import prom_file, runner_config, samples, value
from ansible_collections.protectnet.epns.plugins.module_utils._monitor import _runner, _store

HOUR = 3600.0


@pytest.fixture
def broker(lo: t.Any, pki: t.Any, servers: list) -> t.Callable[..., t.Any]:
    def start(**kwargs: t.Any) -> t.Any:
        received: t.List[bytes] = []
        server = lo.LoopbackServer(lo.mqtt_broker(received=received, **kwargs),
                                   lo.tls_server_context(pki.server_cert, pki.server_key))
        server.received = received
        servers.append(server)
        return server
    return start


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def once(config: Path, clock: Clock, mode: t.Optional[str] = None) -> t.Tuple[int, t.Dict[str, t.Any]]:
    return _runner.run_once(_runner.load_config(str(config)), mode, clock)


def test_the_metrics_name_each_path_by_port_and_via_and_the_verdict_is_one_hot(
        tmp_path: Path, pki: t.Any, lo: t.Any, broker: t.Any) -> None:
    fallback, closed = broker(), lo.free_port()
    config = runner_config(tmp_path, pki, closed, fallback.port)
    code, done = once(config, Clock(), "mqtt")
    assert (code, done["mode"]) == (1, "mqtt"), done["result"]["verdict_reason"]
    found = samples(prom_file(config))
    up = {(labels["port"], labels["via"], labels["proxy"]): v for labels, v in found["epns_path_up"]}
    assert up == {(str(closed), "direct", ""): 0.0, (str(fallback.port), "direct", ""): 1.0}
    assert found["epns_path_failure"] == [({"port": str(closed), "via": "direct", "proxy": "",
                                            "class": "tcp_refused", "stage": "tcp"}, 1.0)]
    assert {labels["verdict"]: v for labels, v in found["epns_verdict"]} == \
        {"reachable": 0, "degraded": 1, "unreachable": 0}
    assert value(found, "epns_probe_mode_info", mode="mqtt") == 1
    assert sum(v for _labels, v in found["epns_probe_mode_info"]) == 1
    stages = {labels["stage"] for labels, _v in found["epns_path_stage_seconds"]
              if labels["port"] == str(fallback.port)}
    assert stages == {"tcp", "tls", "mqtt"}
    issuer = hashlib.sha256(done["result"]["paths"][1]["attempts"][0]["tls"]["issuer"].encode()).hexdigest()
    assert value(found, "epns_tls_issuer_info", port=str(fallback.port), issuer_sha256=issuer) == 1
    assert [labels["port"] for labels, _v in found["epns_tls_issuer_info"]] == [str(fallback.port)]
    assert value(found, "epns_tls_interception_suspected", port=str(fallback.port)) == 0
    assert value(found, "epns_path_last_success_timestamp_seconds", port=str(fallback.port)) == 1_700_000_000
    assert [labels["port"] for labels, _v in found["epns_path_last_success_timestamp_seconds"]] == [str(fallback.port)]
    assert value(found, "epns_probe_runs_skipped_total") == 0
    for name in found:
        assert name.startswith("epns_"), name
    assert oct(os.stat(prom_file(config)).st_mode & 0o777) == "0o644"
    assert not [p for p in prom_file(config).parent.iterdir() if p.name != "epns.prom"]


def test_the_schedule_holds_first_then_checks_tls_only_and_connects_mqtt_hourly(
        tmp_path: Path, pki: t.Any, lo: t.Any, broker: t.Any) -> None:
    primary, fallback = broker(), broker()
    config = runner_config(tmp_path, pki, primary.port, fallback.port)
    clock = Clock()
    modes = []
    for step in (0, 15 * 60, 15 * 60, 30 * 60 + 1, 15 * 60):
        clock.now += step
        before = len(primary.received)
        code, done = once(config, clock)
        modes.append((done["mode"], len(primary.received) - before))
        assert code == 0, done["result"]["verdict_reason"]
    # (mode, MQTT CONNECTs the broker received): none between the hourly ones
    assert modes == [("hold", 1), ("tcp_tls", 0), ("tcp_tls", 0), ("mqtt", 1), ("tcp_tls", 0)]
    found = samples(prom_file(config))
    assert value(found, "epns_probe_mode_info", mode="tcp_tls") == 1
    stages = {labels["stage"] for labels, _v in found["epns_path_stage_seconds"]}
    assert stages == {"tcp", "tls"}
    # the hold facts are those of the last hold run, still shown by the runs after it
    assert value(found, "epns_path_hold_survived_seconds", port=str(primary.port)) >= 1.0
    assert value(found, "epns_path_idle_cut", port=str(primary.port)) == 0
    clock.now += 24 * HOUR
    assert once(config, clock)[1]["mode"] == "hold"


def test_a_hold_cut_while_idle_shows_as_an_idle_cut(tmp_path: Path, pki: t.Any, lo: t.Any, broker: t.Any) -> None:
    primary, cutting = broker(), broker(close_on_ping=True)
    config = runner_config(tmp_path, pki, primary.port, cutting.port, hold_seconds=2, keepalive_seconds=1)
    code, _done = once(config, Clock(), "hold")
    assert code == 0
    found = samples(prom_file(config))
    assert value(found, "epns_path_idle_cut", port=str(cutting.port)) == 1
    assert value(found, "epns_path_idle_cut", port=str(primary.port)) == 0
    assert value(found, "epns_path_failure", port=str(cutting.port)) == 1
    assert next(labels for labels, _v in found["epns_path_failure"])["class"] == "idle_dropped"
    assert value(found, "epns_path_hold_survived_seconds", port=str(primary.port)) >= 2.0
    assert value(found, "epns_path_hold_survived_seconds", port=str(cutting.port)) < 2.0


def test_a_run_that_finds_the_lock_held_is_skipped_and_counted(
        tmp_path: Path, pki: t.Any, lo: t.Any, broker: t.Any) -> None:
    primary = broker()
    config = runner_config(tmp_path, pki, primary.port, lo.free_port())
    held = _store.Lock(str(tmp_path / "state"))
    assert held.acquire()
    try:
        assert once(config, Clock()) == (4, {"skipped": True, "runs_skipped_total": 1,
                                             "message": "skipped: another run holds the lock"})
        assert _runner.main(["--config", str(config), "--once"]) == 4
        assert primary.connections == 0
        assert not prom_file(config).exists()
    finally:
        held.release()
    code, _done = once(config, Clock(), "tcp_tls")
    assert code == 0
    assert value(samples(prom_file(config)), "epns_probe_runs_skipped_total") == 2


def test_the_history_keeps_the_newest_lines(tmp_path: Path, pki: t.Any, lo: t.Any, broker: t.Any) -> None:
    primary = broker()
    config = runner_config(tmp_path, pki, primary.port, lo.free_port(), history_keep=3)
    clock = Clock()
    for _round in range(5):
        clock.now += 60
        once(config, clock, "tcp_tls")
    entries = _store.read_history(str(tmp_path / "state"))
    assert [e["time"] for e in entries] == [clock.now - 120, clock.now - 60, clock.now]
    assert entries[-1]["verdict"] == "reachable" and entries[-1]["mode"] == "tcp_tls"
    assert {(p["port"], p["ok"], p["failure_class"]) for p in entries[-1]["paths"]} == \
        {(str(primary.port), True, None), (entries[-1]["paths"][1]["port"], False, "tcp_refused")}
    assert len((tmp_path / "state" / "history.jsonl").read_text().splitlines()) == 3


VERDICT_BY_SERVED = {(True, True): "reachable", (True, False): "reachable", (False, True): "degraded",
                     (False, False): "unreachable"}


@pytest.mark.parametrize("served, code", [((True, True), 0), ((True, False), 0), ((False, True), 1),
                                          ((False, False), 2)])
def test_the_exit_code_follows_the_verdict(tmp_path: Path, pki: t.Any, lo: t.Any, broker: t.Any,
                                           served: t.Tuple[bool, bool], code: int,
                                           capsys: pytest.CaptureFixture) -> None:
    ports = [broker().port if up else lo.free_port() for up in served]
    config = runner_config(tmp_path, pki, *ports)
    assert _runner.main(["--config", str(config), "--json", "--mode", "tcp_tls"]) == code
    printed = json.loads(capsys.readouterr().out)
    assert printed["result"]["verdict"] == VERDICT_BY_SERVED[served]
    assert not prom_file(config).exists()  # a check on demand writes nothing
    assert _runner.main(["--config", str(config), "--once", "--mode", "tcp_tls"]) == code
    assert "EPNS 127.0.0.1: " in capsys.readouterr().out


def test_usage_and_configuration_errors_exit_3_with_a_message(tmp_path: Path, pki: t.Any, lo: t.Any,
                                                             capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        _runner.main(["--mode", "nonsense"])
    assert stop.value.code == 3
    assert "invalid choice: 'nonsense'" in capsys.readouterr().err
    config = runner_config(tmp_path, pki, lo.free_port(), lo.free_port())
    data = json.loads(config.read_text())
    for change, said in (({"probe": dict(data["probe"], mqtt_client_id="agent-id")},
                          "probe options mqtt_client_id are not accepted"),
                         ({"history_keep": 0}, "history_keep is 0"),
                         ({"probe": dict(data["probe"], primary_port=70000)}, "primary_port: 70000")):
        config.write_text(json.dumps(dict(data, **change)))
        assert _runner.main(["--config", str(config), "--once"]) == 3
        assert said in capsys.readouterr().err
    assert _runner.main(["--config", str(tmp_path / "missing.json")]) == 3
    assert "cannot read the configuration" in capsys.readouterr().err


def test_help_names_the_exit_codes(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        _runner.main(["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "usage: epns-probe" in out and "4 skipped (another run holds the lock)" in out and "--once" in out


def test_a_passive_run_sends_nothing_and_reports_the_agents_own_connection(
        tmp_path: Path, pki: t.Any, lo: t.Any, broker: t.Any) -> None:
    primary = broker()
    config = runner_config(tmp_path, pki, primary.port, lo.free_port(), active=False)
    code, done = once(config, Clock())
    assert (code, done["mode"], done["result"]) == (0, "passive", None)
    assert primary.connections == 0
    found = samples(prom_file(config))
    assert value(found, "epns_probe_mode_info", mode="passive") == 1
    assert "epns_path_up" not in found and "epns_verdict" not in found
    # no ERAAgent runs on this machine: the check sees that (as root) and says so, or says it cannot see
    state = done["agent_connection"]["state"]
    assert state in ("no_agent", "cannot_see"), done["agent_connection"]
    expected = [] if state == "cannot_see" else [({"port": "", "via": ""}, 0.0)]
    assert found.get("epns_agent_connection_up", []) == expected
    assert _store.read_history(str(tmp_path / "state"))[-1]["agent_connection"]["state"] == state
