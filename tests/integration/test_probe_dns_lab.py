"""The probe's DNS stage against the lab's real resolver (dnsmasq in pn-dns), read through a real Ansible run.

Each resolver mode is switched on for one agent (`lab.fault(agent, "dns", mode=...)`); the probe must name what the
resolver said (its address and the rcode), end within its timeout under a slow resolver, never connect to a
sinkholed address, and probe only the family the resolver has an address for.
"""
from __future__ import annotations

from typing import Any, Dict, List

import pytest
from _probe_scenarios import Scenario, check_scenario, names, path_of, run_scenarios

pytestmark = pytest.mark.lab

RESOLVER4 = "198.18.1.53"  # the first nameserver in the agents' resolv.conf
BLOCK_PAGE = ["198.18.1.61", "2001:db8:0:1::61"]
DIRECT = ("8883 direct", "443 direct")


def _all(cls: str) -> Dict[str, str]:
    return {path: cls for path in DIRECT}


def _dns_says(*words: str) -> Any:
    def check(result: Dict[str, Any]) -> None:
        failure = result["dns"]["failure"]
        assert failure is not None, result["dns"]
        for word in words:
            assert word in failure["message"], (word, failure)
        assert all(not p["attempts"] for p in result["paths"]), "no address may be tried"
    return check


def _families(expected: set) -> Any:
    def check(result: Dict[str, Any]) -> None:
        for path_id in DIRECT:
            assert {a["family"] for a in path_of(result, path_id)["attempts"]} == expected
        assert result["dns"]["failure"] is None
    return check


def _ends_in_time(limit_ms: int, *words: str) -> Any:
    def check(result: Dict[str, Any]) -> None:
        _dns_says(*words)(result)
        assert result["elapsed_ms"] < limit_ms, result["elapsed_ms"]
    return check


def _slow_but_answered(result: Dict[str, Any]) -> None:
    assert result["dns"]["failure"] is None
    assert result["dns"]["elapsed_ms"] >= 1400, result["dns"]


SCENARIOS: List[Scenario] = [
    Scenario("nxdomain", faults=[("dns", {"mode": "nxdomain"})], verdict="unreachable", paths=_all("dns_nxdomain"),
             check=_dns_says("NXDOMAIN", RESOLVER4)),
    Scenario("servfail", faults=[("dns", {"mode": "servfail"})], verdict="unreachable", paths=_all("dns_servfail"),
             check=_dns_says("SERVFAIL", RESOLVER4)),
    Scenario("no answer at all", faults=[("dns", {"mode": "timeout"})], verdict="unreachable",
             args={"connect_timeout": 2, "timeout": 8}, paths=_all("dns_timeout"),
             check=_ends_in_time(8000, RESOLVER4)),
    Scenario("a only", faults=[("dns", {"mode": "a-only"})], verdict="reachable", paths=_all("ok"),
             check=_families({"ipv4"})),
    Scenario("aaaa only", faults=[("dns", {"mode": "aaaa-only"})], verdict="reachable", paths=_all("ok"),
             check=_families({"ipv6"})),
    Scenario("a only, ipv6 asked", faults=[("dns", {"mode": "a-only"})], args={"address_family": "ipv6"},
             verdict="unreachable", paths=_all("dns_no_answer"), check=_dns_says("IPv6", "NOERROR", RESOLVER4)),
    Scenario("slow, within connect_timeout", faults=[("dns", {"mode": "slow", "seconds": 1.5})],
             args={"connect_timeout": 3, "timeout": 10}, verdict="reachable", paths=_all("ok"),
             check=_slow_but_answered),
    Scenario("slow, beyond connect_timeout", faults=[("dns", {"mode": "slow", "seconds": 2.5})],
             args={"connect_timeout": 1, "timeout": 4}, verdict="unreachable", paths=_all("dns_timeout"),
             check=_ends_in_time(4000, "connect_timeout")),
    Scenario("sinkhole, null addresses", faults=[("dns", {"mode": "sinkhole-null"})], verdict="unreachable",
             paths=_all("dns_sinkholed"), check=_dns_says("0.0.0.0", RESOLVER4)),
    Scenario("sinkhole, block page", faults=[("dns", {"mode": "sinkhole-page"})],
             args={"dns_sinkhole_addresses": BLOCK_PAGE}, verdict="unreachable", paths=_all("dns_sinkholed"),
             check=_dns_says(BLOCK_PAGE[0], RESOLVER4)),
]


@pytest.fixture(scope="module")
def outcomes(lab: Any) -> Dict[str, Any]:
    return run_scenarios(lab, SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=names(SCENARIOS))
def test_probe_names_what_the_resolver_said(outcomes: Dict[str, Any], scenario: Scenario) -> None:
    check_scenario(outcomes, scenario)


def test_dns_failure_is_the_dns_stage(outcomes: Dict[str, Any]) -> None:
    for scenario in SCENARIOS:
        result, _ = outcomes[scenario.name]
        for path_id, expected in scenario.paths.items():
            if expected.startswith("dns_"):
                assert path_of(result, path_id)["failure"]["stage"] == "dns", scenario.name
