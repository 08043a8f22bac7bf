"""Wake-on-LAN egress through the other firewall backends, in the lab: the ESET PROTECT server host runs iptables
(legacy), firewalld or ufw with a default-deny egress of its own; wol_multicast opens UDP 9 to the groups and the
directed broadcasts through that firewall and rewrites the multicast TTL in an nftables table beside it. Proved with
magic packets caught on the agents (and their TTL), check mode, a second run, and state=absent giving the firewall
back as it was."""
from __future__ import annotations

import re
from typing import Any, Callable, Dict, Iterator, Tuple

import pytest
from _firewall import (
    clean_host,
    firewalld_default_deny,
    firewalld_reset,
    iptables_default_deny,
    sh,
    ufw_default_deny,
    ufw_reset,
)
from _wol import GROUP, GROUP6, LAN2_BCAST, ROLE_DESTINATIONS, cells, multicast, needs_lan2, role

pytestmark = pytest.mark.lab

TTL_TABLE = "table inet protectnet_wolttl"


def _iptables_deny(lab: Any, host: str) -> None:
    iptables_default_deny(lab, host, "legacy")


def _firewall_text(lab: Any, host: str) -> str:
    """Every firewall the host has (nftables with firewalld's and the TTL table, iptables legacy, ipsets, ufw's and
    firewalld's saved files with their modes and owners), counters and volatile ordering removed."""
    text = sh(lab, host, ["nft", "list", "ruleset"])
    text += sh(lab, host, ["sh", "-c", "iptables-legacy-save; ip6tables-legacy-save; ipset list -n; "
                           "cat /etc/ufw/user.rules /etc/ufw/user6.rules 2>/dev/null; "
                           "stat -c '%a %U:%G %n' /etc/ufw/user.rules /etc/ufw/user6.rules 2>/dev/null; "
                           "cd /etc/firewalld 2>/dev/null && find . -type f | sort | xargs -r md5sum && "
                           "find . -printf '%y %m %u:%g %p\\n' | sort"])
    text = re.sub(r"counter packets \d+ bytes \d+", "counter", text)
    text = "\n".join(re.sub(r" \[\d+:\d+\]$", "", line) for line in text.splitlines()
                     if not line.startswith("# "))  # iptables-save's dated comments; ufw's "### tuple" lines stay
    chunks = text.split("\ntable ")  # a firewalld reload moves its table behind others
    return "\n".join(sorted(c if c.startswith("table ") else "table " + c for c in chunks if c.strip()))


BACKENDS: Dict[str, Tuple[Callable[[Any, str], None], Callable[[Any, str], None]]] = {
    "iptables": (_iptables_deny, clean_host),
    "firewalld": (firewalld_default_deny, firewalld_reset),
    "ufw": (ufw_default_deny, ufw_reset),
}


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def flow(request: pytest.FixtureRequest, lab: Any, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Dict[str, Any]]:
    needs_lan2(lab)
    backend: str = request.param
    deny, reset = BACKENDS[backend]
    server, tmp = lab.server, tmp_path_factory.mktemp(f"wol-{backend}")
    args = {"destinations": ROLE_DESTINATIONS, "server_settings": False, "firewall_backend": backend}
    rec: Dict[str, Any] = {"backend": backend}
    reset(lab, server)
    try:
        deny(lab, server)
        lab.directed_broadcast(True)
        rec["before"] = _firewall_text(lab, server)
        rec["check"] = multicast(lab, tmp, args, "--check", "--diff")
        rec["after_check"] = _firewall_text(lab, server)
        rec["opened"] = role(lab, tmp, epns_wol_firewall_backend=backend)
        rec["applied"] = _firewall_text(lab, server)
        rec["again"] = multicast(lab, tmp, args)
        rec["gone"] = multicast(lab, tmp, dict(args, state="absent"))
        rec["after_absent"] = _firewall_text(lab, server)
        yield rec
    finally:
        lab.directed_broadcast(False)
        reset(lab, server)
        lab.run(server, ["ip", "route", "flush", "proto", "186"])
        lab.run(server, ["ip", "-6", "route", "flush", "proto", "186"])


def test_check_mode_predicts_and_changes_nothing(flow: Dict[str, Any]) -> None:
    check = flow["check"]
    assert not check.get("failed"), check.get("msg")
    assert check["changed"] is True and check["host_network"]["firewall"]["backend"] == flow["backend"]
    assert flow["after_check"] == flow["before"]


def test_the_packets_pass_the_hosts_default_deny_with_the_ttl_rewritten(flow: Dict[str, Any], lab: Any) -> None:
    opened = cells(flow["opened"])
    for agent in lab.agents:
        for group in (GROUP, GROUP6):
            cell = opened[group][agent]
            assert cell["status"] == "arrived", (flow["backend"], group, agent, cell)
            assert cell["ttl"] == 16, cell  # sent with TTL 1; the protectnet_wolttl table rewrote it
    across = opened[LAN2_BCAST][lab.lan2_agents[0]]
    assert across["status"] == "arrived", across
    # a directed broadcast keeps the sender's TTL (64) here: the TTL table rewrites the groups only. One or two
    # routers on the way: pn-router forwards to pn-router2 on the same segment until its ICMP redirect is taken
    assert across["ttl"] in (62, 63), across
    config = flow["opened"]["config"]["host_network"]["firewall"]
    assert config["backend"] == flow["backend"] and config["multicast_ttl"]["by"] == f"nftables {TTL_TABLE}"


def test_objects_are_the_wol_owners_own(flow: Dict[str, Any]) -> None:
    applied, backend = flow["applied"], flow["backend"]
    assert TTL_TABLE in applied and "ip ttl set 16" in applied and "ip6 hoplimit set 16" in applied
    assert "protectnet_epns" not in applied.replace("protectnet_epns/", "")
    expected = {"iptables": ["-A OUTPUT -m comment --comment \"protectnet_wol jump\" -j PROTECTNET_WOL",
                             "protectnet_wol_wol_v4", "-p udp"],
                "firewalld": ["protectnet_wol.xml", "protectnet_wol_wol_v4.xml", "protectnet_wol_wol_v6.xml"],
                "ufw": ["### tuple ### allow udp 9 239.255.0.9 any 0.0.0.0/0 out comment=",
                        "### tuple ### allow udp 9 ff05::9 any ::/0 out comment="]}[backend]
    for text in expected:
        assert text in applied, (backend, text)


def test_a_second_run_changes_nothing(flow: Dict[str, Any]) -> None:
    again = flow["again"]
    assert not again.get("failed"), again.get("msg")
    assert again["changed"] is False, again["host_network"]


def test_absent_gives_the_firewall_back(flow: Dict[str, Any]) -> None:
    gone = flow["gone"]
    assert gone["changed"] is True and not gone.get("failed"), gone.get("msg")
    assert flow["after_absent"] == flow["before"]

