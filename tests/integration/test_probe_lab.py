"""Every probe outcome, produced by a real fault in the lab and read through a real Ansible run.

Scenarios run in batches, one per agent at a time, so a whole batch costs one ansible-playbook run.
Where the probe says a direct path works or fails, openssl s_client and mosquitto_pub, run in the same
namespace, must agree.
"""
from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import pytest
from _ansible import probe
from _probe_scenarios import Scenario, check_scenario, names, outcome, path_of, run_scenarios

pytestmark = pytest.mark.lab

LAB_CA_NAME = "PN Lab Root CA"
INTERCEPT_CA_NAME = "Intercept CA"


def _untrusted_names_the_interceptor(result: Dict[str, Any]) -> None:
    attempt = path_of(result, "8883 direct")["attempts"][0]
    assert INTERCEPT_CA_NAME in attempt["tls"]["issuer"]
    assert attempt["tls"]["verified"] is False


def _both_families_tried(result: Dict[str, Any]) -> None:
    families = {a["family"] for a in path_of(result, "8883 direct")["attempts"]}
    assert families == {"ipv4", "ipv6"}
    tls = path_of(result, "8883 direct")["attempts"][0]["tls"]
    assert tls["verified"] is True
    assert "epns.eset.com" in tls["sans"]
    assert LAB_CA_NAME in tls["issuer"]
    assert len(tls["sha256"]) == 64
    assert tls["version"].startswith("TLS")
    assert path_of(result, "8883 direct")["attempts"][0]["mqtt"]["return_code"] == 0


def _only_ipv6(result: Dict[str, Any]) -> None:
    for path in result["paths"]:
        assert {a["family"] for a in path["attempts"]} == {"ipv6"}


def _hold_pinged(result: Dict[str, Any]) -> None:
    stages = path_of(result, "8883 direct")["attempts"][0]["stages"]
    assert stages[-1]["name"] == "hold" and stages[-1]["ok"]


def _proxy_status_reported(result: Dict[str, Any]) -> None:
    refused = path_of(result, "8883 via http://proxy.lab:3129")
    assert "403" in refused["attempts"][0]["proxy_status"]
    assert refused["failure"]["stage"] == "proxy_connect"
    assert "200" in path_of(result, "443 via http://proxy.lab:3129")["attempts"][0]["proxy_status"]


SCENARIOS: List[Scenario] = [
    Scenario("healthy", verdict="reachable", paths={"8883 direct": "ok", "443 direct": "ok"},
             check=_both_families_tried, oracle=True),
    Scenario("8883 dropped", faults=[("block", {"port": 8883})], verdict="degraded",
             paths={"8883 direct": "tcp_timeout", "443 direct": "ok"}, oracle=True),
    Scenario("8883 rejected", faults=[("block", {"port": 8883, "action": "reject"})], verdict="degraded",
             paths={"8883 direct": "tcp_refused", "443 direct": "ok"}, oracle=True),
    Scenario("both rejected by ICMP", verdict="unreachable",
             faults=[("block", {"port": 8883, "action": "reject-icmp"}),
                     ("block", {"port": 443, "action": "reject-icmp"})],
             args={"address_family": "ipv4"},
             paths={"8883 direct": "tcp_unreachable", "443 direct": "tcp_unreachable"}),
    Scenario("broker down", faults=[("broker-down", {})], verdict="unreachable",
             paths={"8883 direct": "tcp_refused", "443 direct": "tcp_refused"}, oracle=True),
    # Every other DNS outcome: test_probe_dns_lab.py
    Scenario("name does not exist", faults=[("dns", {"mode": "nxdomain"})], verdict="unreachable",
             paths={"8883 direct": "dns_nxdomain", "443 direct": "dns_nxdomain"}, oracle=True),
    Scenario("interception, untrusted", faults=[("intercept", {})], verdict="unreachable",
             paths={"8883 direct": "tls_untrusted", "443 direct": "tls_untrusted"},
             check=_untrusted_names_the_interceptor, oracle=True),
    # No expected_issuer: the Intercept CA is an anchor added on the host, which alone says "intercepted".
    Scenario("interception, trusted by the host", faults=[("intercept", {"trusted": True})], verdict="unreachable",
             paths={"8883 direct": "tls_intercepted", "443 direct": "tls_intercepted"}),
    Scenario("broker demands a client certificate", faults=[("mtls", {})], verdict="reachable",
             paths={"8883 direct": "proven_by_auth", "443 direct": "proven_by_auth"}, oracle=True),
    Scenario("client certificate given", faults=[("mtls", {})], verdict="reachable",
             args={"client_cert": "{{ lab_client_cert_path }}", "client_key": "{{ lab_client_key_path }}"},
             paths={"8883 direct": "ok"}),
    Scenario("garbage after TLS", faults=[("hostile", {"mode": "garbage-after-tls"})], verdict="unreachable",
             paths={"8883 direct": "mqtt_bad_response", "443 direct": "mqtt_bad_response"}),
    Scenario("silence after TLS", faults=[("hostile", {"mode": "silent-after-tls"})], verdict="unreachable",
             args={"timeout": 6, "connect_timeout": 2},
             paths={"8883 direct": "mqtt_no_connack", "443 direct": "mqtt_no_connack"}),
    Scenario("not TLS at all", faults=[("hostile", {"mode": "not-tls"})], verdict="unreachable",
             paths={"8883 direct": "tls_handshake_failed", "443 direct": "tls_handshake_failed"}, oracle=True),
    Scenario("idle connections cut", faults=[("idle-cut", {"seconds": 2})], verdict="unreachable",
             args={"hold_seconds": 3.5, "timeout": 8},
             paths={"8883 direct": "idle_dropped", "443 direct": "idle_dropped"}),
    Scenario("idle connections held", args={"hold_seconds": 1.5, "ping_interval": 0.5}, verdict="reachable",
             paths={"8883 direct": "ok"}, check=_hold_pinged),
    Scenario("443-only proxy, direct blocked", verdict="degraded",
             faults=[("block", {"port": 8883, "to": "epns"}), ("block", {"port": 443, "to": "epns"})],
             args={"proxies": ["{{ lab_proxy_443only_url }}"]},
             paths={"8883 direct": "tcp_timeout", "443 direct": "tcp_timeout",
                    "8883 via http://proxy.lab:3129": "proxy_refused", "443 via http://proxy.lab:3129": "ok"},
             check=_proxy_status_reported),
    Scenario("good proxy, direct blocked", verdict="reachable",
             faults=[("block", {"port": 8883, "to": "epns", "action": "reject"}),
                     ("block", {"port": 443, "to": "epns", "action": "reject"})],
             args={"proxies": ["{{ lab_proxy_url }}"]},
             paths={"8883 direct": "tcp_refused", "8883 via http://proxy.lab:3128": "ok",
                    "443 via http://proxy.lab:3128": "ok"}),
    Scenario("proxy unreachable", verdict="reachable", args={"proxies": ["http://proxy.lab:3999"]},
             paths={"8883 direct": "ok", "8883 via http://proxy.lab:3999": "proxy_unreachable"}),
    Scenario("slowloris proxy", verdict="reachable", args={"proxies": ["{{ lab_slow_proxy_url }}"], "timeout": 5},
             paths={"8883 via http://hostile.lab:3130": "proxy_bad_response"}),
    Scenario("garbage proxy", verdict="reachable", args={"proxies": ["{{ lab_garbage_proxy_url }}"]},
             paths={"8883 via http://hostile.lab:3131": "proxy_bad_response"}),
    Scenario("IPv6 only", args={"address_family": "ipv6"}, verdict="reachable",
             paths={"8883 direct": "ok", "443 direct": "ok"}, check=_only_ipv6),
    Scenario("IPv6 only, 8883 rejected", faults=[("block", {"port": 8883, "action": "reject"})],
             args={"address_family": "ipv6"}, verdict="degraded",
             paths={"8883 direct": "tcp_refused", "443 direct": "ok"}, check=_only_ipv6),
    Scenario("latency and loss do not break a healthy path", faults=[("latency", {"rtt_ms": 40, "loss": 2})],
             verdict="reachable", paths={"8883 direct": "ok", "443 direct": "ok"}),
]


@dataclass(frozen=True)
class Oracle:
    tls_verified: bool  # openssl verified the chain and the name
    cert_demanded: bool  # openssl saw the server's "certificate required" alert
    mqtt_ok: bool  # mosquitto_pub connected and published


def _oracle(lab: Any, agent: str, port: int) -> Oracle:
    """What openssl and mosquitto, run in the agent's namespace, say of one direct path."""

    def run(argv: List[str]) -> Tuple[bool, str]:
        # A filtered port would keep either tool waiting for minutes: a time-out is a failure here.
        try:
            done = lab.run(agent, argv, timeout=6, input="")
        except subprocess.TimeoutExpired:
            return False, ""
        return done.returncode == 0, done.stdout + done.stderr

    # stdin stays open for a second: with TLS 1.3 the broker's "certificate required" alert comes after the
    # client's Finished, and s_client given an empty stdin may close before it arrives (seen under full-run load)
    _, tls_out = run(["sh", "-c", 'sleep 1 | "$@"', "sh",
                      "openssl", "s_client", "-connect", f"epns.eset.com:{port}", "-servername", "epns.eset.com",
                      "-verify_return_error", "-verify_hostname", "epns.eset.com", "-CApath", "/etc/ssl/certs"])
    mqtt_ok, _ = run(["mosquitto_pub", "-h", "epns.eset.com", "-p", str(port), "--capath", "/etc/ssl/certs",
                      "-t", "pn/oracle", "-m", "x", "-q", "0", "-i", f"pn-oracle-{port}"])
    # s_client prints "Verify return code: 0" even when no certificate arrived: require the certificate too.
    verified = "Server certificate" in tls_out and "Verify return code: 0 (ok)" in tls_out
    return Oracle(verified, "alert certificate required" in tls_out, mqtt_ok)


@pytest.fixture(scope="module")
def outcomes(lab: Any) -> Dict[str, Tuple[Dict[str, Any], Optional[Dict[int, Oracle]]]]:
    """Run every scenario once; the tests below only read the results."""
    return run_scenarios(lab, SCENARIOS, _oracle)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=names(SCENARIOS))
def test_probe_names_the_broken_stage(outcomes: Dict[str, Any], scenario: Scenario) -> None:
    check_scenario(outcomes, scenario)


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s.oracle], ids=[s.name for s in SCENARIOS if s.oracle])
def test_independent_tools_agree(outcomes: Dict[str, Any], scenario: Scenario) -> None:
    result, oracles = outcomes[scenario.name]
    for port, oracle in oracles.items():
        path = path_of(result, f"{port} direct")
        probe_verified = any(a["tls"] and a["tls"]["verified"] for a in path["attempts"])
        probe_cert_demanded = bool(path["failure"]) and path["failure"]["class"] == "tls_client_cert_required"
        assert oracle.tls_verified == probe_verified, (port, oracle, path)
        assert oracle.cert_demanded == probe_cert_demanded, (port, oracle, path)
        assert oracle.mqtt_ok == (path["ok"] and not path["proven_by_auth"]), (port, oracle, path)


def test_degraded_verdict_says_which_fallback(outcomes: Dict[str, Any]) -> None:
    result, _ = outcomes["8883 dropped"]
    assert result["working_fallback"] == "443 direct"
    assert "443" in result["verdict_reason"]


def test_proven_by_auth_is_explained(outcomes: Dict[str, Any]) -> None:
    result, _ = outcomes["broker demands a client certificate"]
    path = path_of(result, "8883 direct")
    assert path["failure"]["class"] == "tls_client_cert_required"
    assert path["note"]
    assert path_of(result, "443 direct")["failure"]["class"] == "mqtt_refused"


def test_dropped_path_ends_within_the_deadline(outcomes: Dict[str, Any]) -> None:
    result, _ = outcomes["slowloris proxy"]
    assert result["elapsed_ms"] <= 5000 + 200


def test_check_mode_and_paramiko(lab: Any) -> None:
    agents = lab.agents
    lab.fault(agents[0], "block", port=8883, action="reject")
    for connection, extra in (("paramiko", ()), ("ssh", ("--check",))):
        results = probe(lab, {agents[0]: {}, agents[1]: {}}, connection=connection, args=extra)
        assert results[agents[0]]["verdict"] == "degraded", connection
        assert results[agents[1]]["verdict"] == "reachable", connection
        assert all(r["changed"] is False for r in results.values())


def test_proxy_credentials_are_refused(lab: Any) -> None:
    agent = lab.agents[0]
    result = probe(lab, {agent: {"proxies": ["http://user:s3cr3t-pw@proxy.lab:3128"]}})[agent]
    assert result["failed"] is True
    assert "authentication" in result["msg"]
    assert "s3cr3t-pw" not in result["msg"]


def test_fail_on_degraded_fails_the_host(lab: Any) -> None:
    agent = lab.agents[0]
    lab.fault(agent, "block", port=8883, action="reject")
    result = probe(lab, {agent: {"fail_on": "degraded"}})[agent]
    assert result["failed"] is True
    assert result["verdict"] == "degraded"


def test_global_broker_stop_is_seen_by_every_agent(lab: Any) -> None:
    lab.broker("stop")
    started = time.monotonic()
    results = probe(lab, {agent: {} for agent in lab.agents})
    assert time.monotonic() - started < 30
    for result in results.values():
        assert result["verdict"] == "unreachable"
        assert outcome(path_of(result, "8883 direct")) == "tcp_refused"
