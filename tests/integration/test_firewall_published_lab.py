"""epns_firewall taking ESET's published list by name (issue 16), on a lab agent with nftables and its own
default-deny egress: check mode predicts the published networks and changes nothing, the run puts them in the
module's set beside the resolved broker, a user's file replaces the collection's list, a bad file fails before
the host is touched, and absent gives the host's firewall back."""
from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, List

import pytest
from _firewall import clean_host, firewall, nft_default_deny, sh
from ansible_collections.protectnet.epns.plugins.plugin_utils._published import load_published

pytestmark = pytest.mark.lab

BROKER_V4, BROKER_V6 = "198.18.1.10/32", "2001:db8:0:1::10/128"


def _published_v4() -> List[str]:
    return [n.with_prefixlen for n in load_published().networks if n.version == 4]


def test_the_published_list_by_name_on_a_real_host_firewall(lab: Any, tmp_path: Path) -> None:
    host = lab.agents[0]
    clean_host(lab, host)
    nft_default_deny(lab, host)
    before = sh(lab, host, ["nft", "list", "ruleset"])
    try:
        check = firewall(lab, {host: {"backend": "nftables", "extra_destinations": ["eset_published"]}},
                         args=["--check", "--diff"])[host]
        assert not check.get("failed"), check.get("msg")
        assert check["changed"] is True and sh(lab, host, ["nft", "list", "ruleset"]) == before
        expected = sorted([*_published_v4(), BROKER_V4], key=ipaddress.ip_network)
        assert check["destinations"]["epns"]["ipv4"] == expected
        assert check["destinations"]["epns"]["ipv6"] == [BROKER_V6]  # KB332 lists no IPv6
        assert check["published"][0]["date"] == load_published().date

        applied = firewall(lab, {host: {"backend": "nftables", "extra_destinations": ["eset_published"]}})[host]
        assert not applied.get("failed"), applied.get("msg")
        live = sh(lab, host, ["nft", "list", "table", "inet", "protectnet_epns"])
        for network in ("91.228.165.144/30", "38.90.226.66", "198.18.1.10"):
            assert network in live, (network, live)

        mine = tmp_path / "mine.yml"
        mine.write_text("date: 2026-12-01\nsource: the lab's own list\nnetworks: [203.0.113.0/24]\n")
        replaced = firewall(lab, {host: {"backend": "nftables", "extra_destinations": [f"eset_published:{mine}"]}})
        assert replaced[host]["destinations"]["epns"]["ipv4"] == ["198.18.1.10/32", "203.0.113.0/24"]
        live = sh(lab, host, ["nft", "list", "table", "inet", "protectnet_epns"])
        assert "203.0.113.0/24" in live and "91.228.165.144/30" not in live

        kept = sh(lab, host, ["nft", "list", "ruleset"])
        mine.write_text("date: 2026-12-01\nsource: broken\nnetworks: [203.0.113.1/24]\n")
        bad = firewall(lab, {host: {"backend": "nftables", "extra_destinations": [f"eset_published:{mine}"]}})[host]
        assert bad["failed"] is True and "'203.0.113.1/24' is not a CIDR without host bits" in bad["msg"]
        assert str(mine) in bad["msg"] and sh(lab, host, ["nft", "list", "ruleset"]) == kept

        gone = firewall(lab, {host: {"backend": "nftables", "state": "absent"}})[host]
        assert not gone.get("failed"), gone.get("msg")
        assert sh(lab, host, ["nft", "list", "ruleset"]) == before
    finally:
        clean_host(lab, host)
