"""Egress groups: probed hosts by the way out they share; a private prefix alone never groups two sites."""
from __future__ import annotations

import typing as t

import pytest
from _report_fixtures import load
from ansible_collections.protectnet.epns.plugins.plugin_utils._report._model import FleetContext, build_report
from ansible_collections.protectnet.epns.plugins.plugin_utils._report._normalise import normalize_phases


def probed(name: str, source: t.Optional[str], gateway: t.Optional[str]) -> dict:
    result = load(name)
    result["egress"] = {"ipv4": {"source": source, "gateway": gateway, "interface": "eth0"} if source else None,
                        "ipv6": None}
    return result


def facts(public_ip: t.Optional[str], group: str = "All/Lab", proxy: t.Optional[str] = None, **more) -> dict:
    info = {"eset_uuid": "u", "eset_public_ip": public_ip, "eset_group_path": group, "in_play": True, **more}
    if proxy:
        info["eset_agent_proxy"] = {"host": proxy, "port": 3128}
    return info


def groups_of(results: dict, hosts_info: t.Optional[dict]) -> t.List[t.List[str]]:
    report = build_report(normalize_phases(results=results), fleet=FleetContext(hosts_info=hosts_info))
    return sorted(g["host_names"] for g in report["egress"])


SAME_LAN = {"a1": probed("unreachable", "10.0.1.10", "10.0.1.1"), "a2": probed("unreachable", "10.0.1.11", "10.0.1.1"),
            "b1": probed("healthy", "10.0.1.10", "10.0.1.1")}
CASES = [
    # two branch offices with the same private /24 and gateway, different public addresses: two lines
    ("same /24, different public address", SAME_LAN,
     {"a1": facts("203.0.113.1"), "a2": facts("203.0.113.1"), "b1": facts("198.51.100.7")},
     [["a1", "a2"], ["b1"]]),
    ("same public address and prefix, different proxy", SAME_LAN,
     {"a1": facts("203.0.113.1"), "a2": facts("203.0.113.1", proxy="p1"), "b1": facts("203.0.113.1")},
     [["a1", "b1"], ["a2"]]),
    ("same public address, different ESET group", SAME_LAN,
     {"a1": facts("203.0.113.1"), "a2": facts("203.0.113.1"), "b1": facts("203.0.113.1", group="All/Other")},
     [["a1", "a2"], ["b1"]]),
    ("no ESET data: the probe's gateway groups", SAME_LAN, None, [["a1", "a2", "b1"]]),
    ("no public address, no gateway: egress unknown, never grouped",
     {"a1": probed("unreachable", None, None), "a2": probed("unreachable", None, None)}, None, []),
]


@pytest.mark.parametrize(("results", "hosts_info", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_egress_groups(results, hosts_info, expected):
    assert groups_of(results, hosts_info) == expected


def test_a_group_says_where_it_is_what_its_hosts_see_and_why():
    hosts_info = {"a1": facts("203.0.113.1"), "a2": facts("203.0.113.1"), "b1": facts("198.51.100.7")}
    report = build_report(normalize_phases(results=SAME_LAN), fleet=FleetContext(hosts_info=hosts_info))
    first = report["egress"][0]
    assert first["id"] == "egress-1" and first["hosts"] == 2
    assert (first["public_ip"], first["source"], first["gateway"], first["proxy"], first["eset_group"]) == (
        "203.0.113.1", "10.0.1.0/24", "10.0.1.1", None, "All/Lab")
    assert first["states"]["unreachable"] == 2 and first["states"]["reachable"] == 0
    causes = {c["id"]: c for c in report["causes"]}
    assert first["cause_ids"] and all("a1" in causes[c]["host_names"] for c in first["cause_ids"])
    assert "203.0.113.1" in first["label"] and "10.0.1.0/24" in first["label"]
    assert report["egress"][1]["cause_ids"] == [], "the healthy site has no cause"
    rows = {r["host"]: r for r in report["phases"][-1]["rows"]}
    assert rows["a1"]["egress"] == rows["a2"]["egress"] == "egress-1" and rows["b1"]["egress"] == "egress-2"


def test_without_the_probe_egress_facts_the_inventory_local_address_gives_the_prefix():
    results = {"a": load("healthy"), "b": load("healthy")}
    hosts_info = {"a": facts("203.0.113.1", eset_local_ip="192.168.5.20"),
                  "b": facts("203.0.113.1", eset_local_ip="192.168.6.20")}
    report = build_report(normalize_phases(results=results), fleet=FleetContext(hosts_info=hosts_info))
    assert sorted(g["source"] for g in report["egress"]) == ["192.168.5.0/24", "192.168.6.0/24"]


def test_rows_carry_the_agent_connection_summary_or_null():
    hosts_info = {"a": {"agent_connection": {"summary": {"state": "connected", "port": 443, "via": "proxy",
                                                         "up_seconds": 60},
                                             "message": "the agent itself is on 443 via the proxy"}}}
    report = build_report(normalize_phases(results={"a": load("healthy"), "b": load("healthy")}),
                          fleet=FleetContext(hosts_info=hosts_info))
    rows = {r["host"]: r for r in report["phases"][-1]["rows"]}
    assert rows["a"]["agent_connection"]["port"] == 443 and rows["a"]["agent_connection"]["via"] == "proxy"
    assert rows["b"]["agent_connection"] is None
