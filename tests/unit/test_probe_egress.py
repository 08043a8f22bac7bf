"""The probe's egress facts (issue 16): routes parsed from /proc/net/route and /proc/net/ipv6_route text as Linux
prints it, the kernel's own source address from a real UDP connect() on loopback, and `egress` in every result of
the real probe engine."""
from __future__ import annotations

import socket
import sys
import typing as t
from pathlib import Path

import pytest
from ansible_collections.protectnet.epns.plugins.module_utils._probe import _egress
from ansible_collections.protectnet.epns.plugins.module_utils._probe import _engine as P
from ansible_collections.protectnet.epns.plugins.module_utils._probe._options import ProbeOptions

FIXTURES = Path(__file__).parent / "fixtures" / "egress"
ROUTE_V4, ROUTE_V6 = str(FIXTURES / "route"), str(FIXTURES / "ipv6_route")
# /proc/net/route prints addresses as host-order integers: the fixture was taken on a little-endian host.
little_endian = pytest.mark.skipif(sys.byteorder != "little", reason="the route fixture is little-endian")


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@little_endian
@pytest.mark.parametrize("address, gateway, interface", [
    ("198.18.1.10", None, "wg0"),            # two /24 routes: the lower metric wins
    ("198.18.0.7", None, "eth0"),            # on-link: no gateway
    ("91.228.165.144", "198.18.0.254", "eth0"),  # the default route
    ("10.1.2.3", "198.18.0.254", "eth0"),    # the reject route for 10/8 is no way out; the default is
    ("198.19.0.1", "198.18.0.254", "eth0"),  # the 198.19/16 route is not up
])
def test_the_ipv4_route_is_the_longest_prefix_then_the_lowest_metric(address: str, gateway: t.Optional[str],
                                                                     interface: str) -> None:
    route = _egress.route_to(address, _egress.parse_route_v4(Path(ROUTE_V4).read_text()))
    assert route is not None and (route.gateway, route.interface) == (gateway, interface)


@pytest.mark.parametrize("address, gateway, interface", [
    ("2001:db8:0:1::10", "2001:db8::253", "eth0"),
    ("2001:db8::20", None, "eth0"),
    ("2a03:b0c0::1", "2001:db8::254", "eth0"),
])
def test_the_ipv6_route_follows_the_same_rules(address: str, gateway: t.Optional[str], interface: str) -> None:
    route = _egress.route_to(address, _egress.parse_route_v6(Path(ROUTE_V6).read_text()))
    assert route is not None and (route.gateway, route.interface) == (gateway, interface)


def test_the_kernels_unreachable_default_is_no_route() -> None:
    only_reject = [line for line in Path(ROUTE_V6).read_text().splitlines() if line.endswith("lo")]
    assert _egress.route_to("2a03:b0c0::1", _egress.parse_route_v6("\n".join(only_reject))) is None


def test_garbage_and_empty_tables_give_no_route() -> None:
    assert _egress.parse_route_v4("") == [] and _egress.parse_route_v6("") == []
    assert _egress.parse_route_v4("Iface\tDestination\neth0\tZZZZ\t0 0 0 0 0 0 0\n") == []
    assert _egress.route_to("not-an-address", _egress.parse_route_v4(Path(ROUTE_V4).read_text())) is None


def test_the_source_is_the_kernels_choice_on_loopback() -> None:
    assert _egress.source_toward("127.0.0.1") == "127.0.0.1"
    assert _egress.source_toward("127.0.0.53") == "127.0.0.1"
    assert _egress.source_toward("not-an-address") is None


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")
def test_the_ipv6_source_on_loopback() -> None:
    assert _egress.source_toward("::1") == "::1"


@little_endian
def test_facts_per_family_from_the_first_address_of_each() -> None:
    facts = _egress.egress_facts(["198.18.0.7", "2001:db8:0:1::10", "127.0.0.9"], ROUTE_V4, ROUTE_V6)
    assert facts["ipv4"] is not None and facts["ipv6"] is not None
    assert {k: facts["ipv4"][k] for k in ("toward", "gateway", "interface")} == {
        "toward": "198.18.0.7", "gateway": None, "interface": "eth0"}
    assert (facts["ipv6"]["toward"], facts["ipv6"]["gateway"]) == ("2001:db8:0:1::10", "2001:db8::253")
    assert _egress.egress_facts(["198.18.0.7"], ROUTE_V4, ROUTE_V6)["ipv6"] is None


def test_unreadable_tables_give_null_fields_not_an_error(tmp_path: Path) -> None:
    facts = _egress.egress_facts(["127.0.0.1"], str(tmp_path / "none"), str(tmp_path / "none6"))
    assert facts == {"ipv4": {"toward": "127.0.0.1", "source": "127.0.0.1", "gateway": None, "interface": None},
                     "ipv6": None}


def test_every_probe_result_has_egress(lo: t.Any) -> None:
    result = P.run_probe(ProbeOptions(host="127.0.0.1", primary_port=lo.free_port(), fallback_port=lo.free_port(),
                                      timeout=3.0, connect_timeout=0.5))
    assert result["verdict"] == "unreachable"
    assert result["egress"]["ipv4"]["toward"] == "127.0.0.1" and result["egress"]["ipv4"]["source"] == "127.0.0.1"
    assert result["egress"]["ipv6"] is None


def test_a_proxy_only_probe_looks_toward_the_proxy(lo: t.Any) -> None:
    result = P.run_probe(ProbeOptions(host="epns.eset.com", direct=False,
                                      proxies=[f"http://127.0.0.1:{lo.free_port()}"], timeout=3.0,
                                      connect_timeout=0.5))
    assert result["dns"]["addresses"] == []
    assert result["egress"]["ipv4"]["toward"] == "127.0.0.1" and result["egress"]["ipv4"]["source"] == "127.0.0.1"
