"""The calibration playbook in the lab (issue 15): the probe runs on a lab agent toward the lab's EPNS stand-in on
8883 and 443, the module reads the API emulator on the controller, and the overrides file records what the broker
answered (TLS version, client-certificate request, CONNACK to an anonymous CONNECT, MQTT over TLS on 443)."""
from __future__ import annotations

import sys
import typing as t
from pathlib import Path

import pytest
import yaml
from _ansible import REPO, run_playbook

pytestmark = pytest.mark.lab

sys.path.insert(0, str(REPO / "tests"))
from emulator import DEFAULT_USERS, Emulator  # noqa: E402
from emulator.client import control  # noqa: E402
from emulator.policydata import format1  # noqa: E402

POLICY = {"displayName": "Calibration", "features": [{
    "featureId": 4294967295, "flags": {}, "configuration": {
        "@type": "type.googleapis.com/Era.Common.DataDefinition.Policy.PolicyData", "product": "eset.agent.x",
        "data": format1("agent", {"Proxy": {"ce_flags": 0, "Host": {"ce_flags": 4, "ce_type": 8,
                                                                     "ce_value": "calibrate-proxy.invalid"},
                                            "Port": {"ce_flags": 4, "ce_type": 3, "ce_value": 39031}}})}}]}


def calibrate(lab: t.Any, tmp_path: Path) -> t.Dict[str, t.Any]:
    with Emulator("onprem") as emu:
        control(emu, "POST", "seed", {"policies": [POLICY]})
        done = run_playbook(lab, REPO / "playbooks" / "calibrate.yml", extra_vars={
            "calibrate_hosts": lab.agents[0], "calibrate_policy": "Calibration", "calibrate_dir": str(tmp_path),
            "calibrate_api": {"server": "127.0.0.1", "port": int(emu.url.rsplit(":", 1)[1]), "ca_path": emu.ca_path,
                              "username": "api-user", "password": DEFAULT_USERS["api-user"]}})
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    transcript = (tmp_path / "eset-calibration-transcript.yml").read_text()
    assert DEFAULT_USERS["api-user"] not in transcript and DEFAULT_USERS["api-user"] not in done.stdout
    return t.cast(t.Dict[str, t.Any], yaml.safe_load((tmp_path / "eset-calibration.yml").read_text()))


def test_the_overrides_file_records_what_the_broker_answered(healthy_lab: t.Any, tmp_path: Path) -> None:
    overrides = calibrate(healthy_lab, tmp_path)
    epns = overrides["epns"]
    assert epns["probed"] is True
    for port in ("8883", "443"):
        answer = epns["ports"][port]
        assert answer["tls_version"] in ("TLSv1.2", "TLSv1.3"), answer
        assert answer["certificate"]["verified"] is True
        assert answer["client_certificate_requested"] is False
        assert isinstance(answer["connack_code"], int) and answer["mqtt_over_tls"] is True
    assert epns["port_443_same_mqtt_over_tls"] is True
    assert overrides["agent_policy"]["product"] == "eset.agent.x"


def test_a_broker_that_asks_for_a_client_certificate_is_recorded(healthy_lab: t.Any, tmp_path: Path) -> None:
    healthy_lab.fault(healthy_lab.agents[0], "mtls")
    try:
        epns = calibrate(healthy_lab, tmp_path)["epns"]
    finally:
        healthy_lab.reset()
    assert epns["ports"]["8883"]["client_certificate_requested"] is True
