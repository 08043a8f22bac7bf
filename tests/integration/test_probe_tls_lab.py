"""TLS interception the probe sees without being told, read through a real Ansible run in the lab.

The lab CA stands in for a root the distribution ships (a link into /usr/share/ca-certificates on each host), so
the genuine stand-in broker must not be flagged; interceptors' CAs are trusted the way an admin adds them
(/usr/local/share/ca-certificates) or given as ca_path.
"""
from __future__ import annotations

import base64
import os
import subprocess
from typing import Any, Dict, List

import pytest
from _probe_scenarios import Scenario, check_scenario, names, path_of, run_scenarios

pytestmark = pytest.mark.lab

LAB_CA_DN = "CN=PN Lab Root CA, O=PN Lab"
CORP_CA = "CN=Example Corp Internal Issuing CA, O=Example Corp"


def _spki_pin(lab: Any) -> str:
    pem = lab.ca_path.read_text()
    key = subprocess.run(["openssl", "x509", "-noout", "-pubkey"], input=pem.encode(), check=True,
                         capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=key, check=True,
                         capture_output=True).stdout
    digest = subprocess.run(["openssl", "dgst", "-sha256", "-binary"], input=der, check=True,
                            capture_output=True).stdout
    return "sha256//" + base64.b64encode(digest).decode()


def _names(*words: str) -> Any:
    def check(result: Dict[str, Any]) -> None:
        for port in (8883, 443):
            path = path_of(result, f"{port} direct")
            message = path["failure"]["message"]
            assert all(word in message for word in words), message
            assert path["attempts"][0]["tls"]["verified"] is True
    return check


def _genuine(result: Dict[str, Any]) -> None:
    tls = path_of(result, "8883 direct")["attempts"][0]["tls"]
    assert tls["verified"] is True and tls["anchor"] == LAB_CA_DN, tls


LOCAL_ANCHOR_FILE = "/usr/local/share/ca-certificates/pnlab-corp-ca.crt"

SCENARIOS: List[Scenario] = [
    Scenario("genuine broker, shipped root: not flagged", verdict="reachable",
             paths={"8883 direct": "ok", "443 direct": "ok"}, check=_genuine),
    Scenario("internal CA added as a local anchor", faults=[("intercept", {"ca": "corp", "trusted": True})],
             verdict="unreachable", paths={"8883 direct": "tls_intercepted", "443 direct": "tls_intercepted"},
             check=_names(CORP_CA, LOCAL_ANCHOR_FILE, "added on this host")),
    Scenario("FortiGate-named CA added as a local anchor", faults=[("intercept", {"ca": "forti", "trusted": True})],
             verdict="unreachable", paths={"8883 direct": "tls_intercepted", "443 direct": "tls_intercepted"},
             check=_names("CN=FortiGate CA", "FortiGate", "fortinet.com")),
    Scenario("FortiGate-named CA given as ca_path", faults=[("intercept", {"ca": "forti"})],
             args={"ca_path": "{{ lab_forti_ca_path }}"}, verdict="unreachable",
             paths={"8883 direct": "tls_intercepted", "443 direct": "tls_intercepted"},
             check=_names("CN=FortiGate CA", "FortiGate")),
    Scenario("internal CA given as ca_path: the user chose that trust", faults=[("intercept", {"ca": "corp"})],
             args={"ca_path": "{{ lab_corp_ca_path }}"}, verdict="reachable",
             paths={"8883 direct": "ok", "443 direct": "ok"}),
    Scenario("expected_issuer as a DN, matching", args={"expected_issuer": "o=PN Lab,CN=PN Lab Root CA"},
             verdict="reachable", paths={"8883 direct": "ok", "443 direct": "ok"}),
    Scenario("expected_issuer as a DN, internal CA answers", faults=[("intercept", {"ca": "corp", "trusted": True})],
             args={"expected_issuer": "CN=PN Lab Root CA,O=PN Lab"}, verdict="unreachable",
             paths={"8883 direct": "tls_intercepted", "443 direct": "tls_intercepted"},
             check=_names(CORP_CA, "'CN=PN Lab Root CA,O=PN Lab'")),
    Scenario("expected_issuer as a pin, matching", args={"expected_issuer": "{{ lab_ca_pin }}"},
             verdict="reachable", paths={"8883 direct": "ok", "443 direct": "ok"}),
    Scenario("expected_issuer as a pin, internal CA answers", faults=[("intercept", {"ca": "corp", "trusted": True})],
             args={"expected_issuer": "{{ lab_ca_pin }}"}, verdict="unreachable",
             paths={"8883 direct": "tls_intercepted", "443 direct": "tls_intercepted"}, check=_names(CORP_CA)),
]


@pytest.fixture(scope="module")
def outcomes(lab: Any) -> Dict[str, Any]:
    pin = _spki_pin(lab)
    for scenario in SCENARIOS:
        if scenario.args.get("expected_issuer") == "{{ lab_ca_pin }}":
            scenario.args["expected_issuer"] = pin
    return run_scenarios(lab, SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=names(SCENARIOS))
def test_interception_is_seen_without_configuration(outcomes: Dict[str, Any], scenario: Scenario) -> None:
    check_scenario(outcomes, scenario)


def test_local_anchor_lives_in_the_agent_only(lab: Any) -> None:
    agent = lab.agents[0]
    lab.fault(agent, "intercept", ca="corp", trusted=True)
    try:
        inside = lab.run(agent, ["readlink", "/etc/ssl/certs/pnlab-corp-ca.pem"]).stdout.strip()
        assert inside == LOCAL_ANCHOR_FILE
        assert lab.run(agent, ["test", "-f", LOCAL_ANCHOR_FILE]).returncode == 0
        shipped = lab.run(agent, ["readlink", "-f", "/etc/ssl/certs/PN_Lab_Root_CA.pem"]).stdout.strip()
        assert shipped == "/usr/share/ca-certificates/mozilla/PN_Lab_Root_CA.crt"
        assert "mozilla/PN_Lab_Root_CA.crt" in lab.run(agent, ["cat", "/etc/ca-certificates.conf"]).stdout
    finally:
        lab.clear(agent, "intercept")
    assert lab.run(agent, ["test", "-e", LOCAL_ANCHOR_FILE]).returncode != 0
    # This machine's own directories are untouched.
    assert not os.path.exists(LOCAL_ANCHOR_FILE)
    assert not os.path.exists("/usr/share/ca-certificates/mozilla/PN_Lab_Root_CA.crt")
