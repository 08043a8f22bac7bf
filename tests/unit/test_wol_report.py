"""The pure half of wol_probe's listen mode: which groups an agent joins and which destinations it waits for."""
from __future__ import annotations

from ansible_collections.protectnet.epns.plugins.module_utils._wol import _report

GROUP = {"address": "239.255.0.9", "kind": "ipv4_multicast", "scope": "organization", "subnet": None}
GROUP6 = {"address": "ff15::9", "kind": "ipv6_multicast", "scope": "site", "subnet": None}
LOCAL6 = {"address": "ff11::9", "kind": "ipv6_multicast", "scope": "interface", "subnet": None}
HERE = {"address": "10.1.2.255", "kind": "directed_broadcast", "scope": "global", "subnet": "10.1.2.0/24"}
THERE = {"address": "10.1.3.255", "kind": "directed_broadcast", "scope": "global", "subnet": "10.1.3.0/24"}


def test_groups_are_joined_and_only_this_hosts_broadcasts_expected() -> None:
    addresses = ["10.1.2.11/24", "fd00::5/64"]
    groups, expect = _report.listen_targets([GROUP, GROUP6, HERE, THERE], [], [], addresses)
    assert groups == ["239.255.0.9", "ff15::9"]
    assert expect == ["239.255.0.9", "ff15::9", "10.1.2.255"]


def test_an_interface_local_group_is_expected_but_not_joined() -> None:
    groups, expect = _report.listen_targets([LOCAL6], [], [], [])
    assert groups == []
    assert expect == ["ff11::9"]


def test_given_groups_and_expectations_come_first_without_repeats() -> None:
    given_groups, given_expect = ["239.255.0.9", "239.1.1.1"], ["10.9.9.9"]
    groups, expect = _report.listen_targets([GROUP, HERE, GROUP], given_groups, given_expect, ["10.1.2.11/24"])
    assert groups == ["239.255.0.9", "239.1.1.1"]
    assert expect == ["10.9.9.9", "239.255.0.9", "10.1.2.255"]
    assert given_groups == ["239.255.0.9", "239.1.1.1"] and given_expect == ["10.9.9.9"]  # the options stay as given


def test_without_addresses_no_directed_broadcast_is_expected() -> None:
    assert _report.listen_targets([HERE, THERE], [], [], []) == ([], [])
