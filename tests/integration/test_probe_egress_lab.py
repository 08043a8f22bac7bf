"""The probe's egress facts in the lab, read through a real Ansible run: every agent names its own addresses as
the source and its own segment's router as the gateway, for IPv4 and IPv6 (agents on br-lan leave through
pn-router, the lan2 agent through pn-router2), and a proxy-only probe looks toward the proxy."""
from __future__ import annotations

from typing import Any, Dict

import pytest
from _ansible import probe
from pnlab.topology import (
    LAN2_GW_V4,
    LAN2_GW_V6,
    LAN_GW_V4,
    LAN_GW_V6,
    PROXY_SUFFIX,
    agent_host,
    lan2_agent_host,
    svc_v4,
)

pytestmark = pytest.mark.lab

QUICK = {"timeout": 5, "connect_timeout": 1.5}
BROKER_V4, BROKER_V6 = "198.18.1.10", "2001:db8:0:1::10"


def _expected(lab: Any) -> Dict[str, Dict[str, str]]:
    """host -> its own source addresses and gateways, from the lab's address plan (not from the probe)."""
    hosts = [agent_host(i) for i in range(1, len(lab.agents) + 1)]
    lan2 = [lan2_agent_host(i) for i in range(1, len(lab.lan2_agents) + 1)]
    plan = {h.name: {"v4": h.v4[0], "v6": h.v6[0], "gw4": LAN_GW_V4, "gw6": LAN_GW_V6} for h in hosts}
    plan.update({h.name: {"v4": h.v4[0], "v6": h.v6[0], "gw4": LAN2_GW_V4, "gw6": LAN2_GW_V6} for h in lan2})
    return plan


def test_each_agent_names_its_own_source_and_its_gateway(lab: Any) -> None:
    plan = _expected(lab)
    results = probe(lab, {host: QUICK for host in plan})
    assert set(results) == set(plan)
    for host, want in plan.items():
        egress = results[host]["egress"]
        assert results[host]["verdict"] == "reachable", (host, results[host]["verdict_reason"])
        assert egress["ipv4"] == {"toward": BROKER_V4, "source": want["v4"], "gateway": want["gw4"],
                                  "interface": "eth0"}, (host, egress)
        assert egress["ipv6"] == {"toward": BROKER_V6, "source": want["v6"], "gateway": want["gw6"],
                                  "interface": "eth0"}, (host, egress)
    assert len({r["egress"]["ipv4"]["source"] for r in results.values()}) == len(plan)


def test_a_proxy_only_probe_looks_toward_the_proxy(lab: Any) -> None:
    agent = lab.agents[0]
    args = dict(QUICK, direct=False, proxies=["http://proxy.lab:3128"], address_family="ipv4")
    result = probe(lab, {agent: args})[agent]
    assert result["dns"]["addresses"] == []
    assert result["egress"] == {"ipv4": {"toward": svc_v4(PROXY_SUFFIX), "source": agent_host(1).v4[0],
                                         "gateway": LAN_GW_V4, "interface": "eth0"}, "ipv6": None}
