"""Wake-on-LAN destinations: every validation rule, normalisation, duplicates, link-local warnings, subnets."""
from __future__ import annotations

import pytest
from ansible_collections.protectnet.epns.plugins.action.wol_multicast import broadcasts, rewrite
from ansible_collections.protectnet.epns.plugins.module_utils._wol._validate import (
    DestinationError,
    broadcast_of,
    classify,
    validate,
    values,
)


@pytest.mark.parametrize(("text", "kind", "scope"), [
    ("239.255.0.9", "ipv4_multicast", "site"),
    ("239.1.2.3", "ipv4_multicast", "organization"),
    ("233.252.0.1", "ipv4_multicast", "global"),
    ("224.0.0.251", "ipv4_multicast", "link"),
    ("FF05::0009", "ipv6_multicast", "site"),
    ("ff02::1", "ipv6_multicast", "link"),
    ("ff01::1", "ipv6_multicast", "interface"),
    ("ff0e::9", "ipv6_multicast", "global"),
    ("10.1.2.255/24", "directed_broadcast", "routed"),
    ("10.0.0.5", "unicast", "host"),
    ("2001:db8::5", "unicast", "host"),
    ("127.0.0.1", "loopback", "host"),
    ("::1", "loopback", "host"),
    ("0.0.0.0", "unspecified", "host"),
    ("::", "unspecified", "host"),
    ("255.255.255.255", "limited_broadcast", "host"),
])
def test_classify(text: str, kind: str, scope: str) -> None:
    dest = classify(text)
    assert (dest.kind, dest.scope) == (kind, scope)


@pytest.mark.parametrize(("entry", "words"), [
    ("10.0.0.5", "unicast address: a router forwards it, but the last hop cannot deliver it"),
    ("10.1.2.255", "unicast address"),
    ("255.255.255.255", "limited broadcast: routers never forward it (RFC 1812)"),
    ("127.0.0.1", "loopback address: the packet never leaves"),
    ("0.0.0.0", "unspecified address"),
    ("::", "unspecified address"),
    ("10.1.2.7/24", "is not the directed broadcast of 10.1.2.0/24 (that is 10.1.2.255/24)"),
    ("10.1.2.1/31", "a /31 or /32 has none"),
    ("ff05::9/64", "IPv6 has no broadcast"),
    ("not-an-address", "is not an IPv4/IPv6 address"),
])
def test_refused_with_the_reason(entry: str, words: str) -> None:
    with pytest.raises(DestinationError, match=None) as info:
        validate([entry])
    assert words in str(info.value)


def test_every_refusal_is_listed_at_once_and_allow_lets_them_through() -> None:
    with pytest.raises(DestinationError) as info:
        validate(["10.0.0.5", "127.0.0.1", "255.255.255.255", "0.0.0.0"])
    text = str(info.value)
    assert all(f"{a} is " in text for a in ("10.0.0.5", "127.0.0.1", "255.255.255.255", "0.0.0.0"))
    ok = validate(["10.0.0.5", "127.0.0.1", "255.255.255.255", "0.0.0.0"],
                  allow=["unicast", "loopback", "limited_broadcast", "unspecified"])
    assert values(ok.destinations) == ["10.0.0.5", "127.0.0.1", "255.255.255.255", "0.0.0.0"]


def test_normalised_deduplicated_and_link_local_warned() -> None:
    got = validate(["239.255.0.9", "FF05::0009", "ff05::9", "224.0.0.1", "ff02::1", "ff01::2"],
                   subnets=["10.1.2.0/24", "10.1.2.9/24"])
    assert values(got.destinations) == ["239.255.0.9", "ff05::9", "224.0.0.1", "ff02::1", "ff01::2", "10.1.2.255"]
    assert got.duplicates == ["ff05::9", "10.1.2.255"]
    assert len(got.warnings) == 3 and "stays on the ESET PROTECT server's own segment" in got.warnings[0]
    assert "never leaves the server" in got.warnings[2]


def test_subnets_and_their_errors() -> None:
    assert broadcast_of("10.1.2.0/24") == ("10.1.2.255", "10.1.2.0/24")
    assert broadcast_of("10.1.3.7/23") == ("10.1.3.255", "10.1.2.0/23")
    for bad, words in (("2001:db8::/64", "IPv6 has no broadcast"), ("10.0.0.1/32", "no directed broadcast"),
                       ("x", "not an IPv4 network")):
        with pytest.raises(DestinationError, match=words):
            validate([], subnets=[bad])
    with pytest.raises(DestinationError, match="no destination"):
        validate([])


def test_controller_computation_is_the_modules_own() -> None:
    entries = ["10.1.2.0/24", "10.1.3.7/23", "192.168.0.0/30", "2001:db8::/64", "10.0.0.1/32", "junk"]
    computed = broadcasts(entries)
    assert computed == {"10.1.2.0/24": ["10.1.2.255", "10.1.2.0/24"], "10.1.3.7/23": ["10.1.3.255", "10.1.2.0/23"],
                        "192.168.0.0/30": ["192.168.0.3", "192.168.0.0/30"]}
    for entry, (bcast, net) in computed.items():
        assert broadcast_of(entry) == (bcast, net)
    got = validate([], subnets=["10.1.2.0/24"], computed=computed)
    assert got.destinations[0].as_dict(9) == {"address": "10.1.2.255", "kind": "directed_broadcast", "family": "ipv4",
                                              "subnet": "10.1.2.0/24", "scope": "routed", "port": 9,
                                              "source": "subnets"}


def test_the_action_plugin_hands_the_module_broadcast_slash_prefix() -> None:
    computed = broadcasts(["10.1.3.7/23", "junk"])
    assert [rewrite(e, computed) for e in ["10.1.3.7/23", "junk"]] == ["10.1.3.255/23", "junk"]
    got = validate([], subnets=["10.1.3.255/23"])
    assert (got.destinations[0].address, got.destinations[0].subnet) == ("10.1.3.255", "10.1.2.0/23")
