"""Issue 11: the probe never calls a broken path working. Each scenario is a real fault in the lab, read through a
real Ansible run.

- Peers with the genuine broker certificate that ask for a client certificate and then end the session without the
  proof only the genuine server can give (a TLS 1.3 certificate alert): a reset, a bare close, or a TLS 1.2 alert
  sent in clear. None of them may count as proven_by_auth.
- A dual-stack proxy with one family blocked: the probe tries every address of the proxy, as for direct paths.

The stage-label races (a deadline between stages, during the courtesy DISCONNECT, a crash in the hold) cannot be
produced on demand here; tests/unit/test_probe_engine.py makes them deterministic on loopback.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import pytest
from _probe_scenarios import Scenario, check_scenario, names, path_of, run_scenarios

pytestmark = pytest.mark.lab

PROXY = "{{ lab_proxy_url }}"
PROXY_ID = "http://proxy.lab:3128"


def _nothing_proven(result: Dict[str, Any]) -> None:
    for path in result["paths"]:
        assert path["ok"] is False and path["proven_by_auth"] is False, path
        attempt = path["attempts"][0]
        assert attempt["tls"]["verified"] is True, attempt["tls"]      # the genuine certificate...
        assert "proves nothing" in path["failure"]["message"], path["failure"]


def _reset_named(result: Dict[str, Any]) -> None:
    _nothing_proven(result)
    for path in result["paths"]:
        assert path["failure"]["stage"] == "mqtt"
        assert "reset (TCP RST)" in path["failure"]["message"]


def _close_named(result: Dict[str, Any]) -> None:
    _nothing_proven(result)
    for path in result["paths"]:
        assert "closed without a TLS alert" in path["failure"]["message"], path["failure"]


def _tls12_alert_named(result: Dict[str, Any]) -> None:
    _nothing_proven(result)
    for path in result["paths"]:
        assert path["failure"]["stage"] == "tls"
        assert "TLS 1.2" in path["failure"]["message"] and "in clear" in path["failure"]["message"]


def _genuine_refusal_still_proves(result: Dict[str, Any]) -> None:
    path = path_of(result, "8883 direct")
    assert "certificate_required" in path["failure"]["message"]


def _both_proxy_addresses(blocked: str) -> Any:
    def check(result: Dict[str, Any]) -> None:
        for port in (8883, 443):
            path = path_of(result, f"{port} via {PROXY_ID}")
            by_family = {a["family"]: a for a in path["attempts"]}
            assert set(by_family) == {"ipv4", "ipv6"}, path["attempts"]
            assert by_family[blocked]["ok"] is False
            assert by_family[blocked]["failure"]["class"] == "proxy_unreachable"
            assert path["note"] and "works" in path["note"]
    return check


SCENARIOS: List[Scenario] = [
    Scenario("certificate requested, then a reset", faults=[("hostile", {"mode": "cert-then-reset"})],
             verdict="unreachable", paths={"8883 direct": "connection_reset", "443 direct": "connection_reset"},
             check=_reset_named),
    Scenario("certificate requested, then a bare close", faults=[("hostile", {"mode": "cert-then-close"})],
             verdict="unreachable", paths={"8883 direct": "mqtt_no_connack", "443 direct": "mqtt_no_connack"},
             check=_close_named),
    Scenario("TLS 1.2 certificate alert in clear", faults=[("hostile", {"mode": "tls12-cert-alert"})],
             verdict="unreachable",
             paths={"8883 direct": "tls_client_cert_required", "443 direct": "tls_client_cert_required"},
             check=_tls12_alert_named),
    Scenario("the genuine broker's TLS 1.3 certificate_required still proves the path", faults=[("mtls", {})],
             verdict="reachable", paths={"8883 direct": "proven_by_auth"}, check=_genuine_refusal_still_proves),
    Scenario("proxy's IPv4 address blocked", verdict="reachable",
             faults=[("block", {"port": 3128, "to": "proxy", "action": "reject", "family": "ipv4"})],
             args={"direct": False, "proxies": [PROXY]},
             paths={f"8883 via {PROXY_ID}": "ok", f"443 via {PROXY_ID}": "ok"}, check=_both_proxy_addresses("ipv4")),
    Scenario("proxy's IPv6 address blocked", verdict="reachable",
             faults=[("block", {"port": 3128, "to": "proxy", "action": "reject", "family": "ipv6"})],
             args={"direct": False, "proxies": [PROXY]},
             paths={f"8883 via {PROXY_ID}": "ok", f"443 via {PROXY_ID}": "ok"}, check=_both_proxy_addresses("ipv6")),
]


@pytest.fixture(scope="module")
def outcomes(lab: Any) -> Dict[str, Tuple[Dict[str, Any], Optional[Dict[int, Any]]]]:
    return run_scenarios(lab, SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=names(SCENARIOS))
def test_the_verdict_can_be_trusted(outcomes: Dict[str, Any], scenario: Scenario) -> None:
    check_scenario(outcomes, scenario)
