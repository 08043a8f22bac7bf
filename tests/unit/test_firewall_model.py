"""The backend-neutral firewall model and its destination normalisation (the action plugin's too): pure, no host."""
from __future__ import annotations

import socket
import typing as t

import pytest
from ansible_collections.protectnet.epns.plugins.module_utils._firewall._model import (
    FirewallError,
    PolicySpec,
    State,
    build_policy,
    diff,
    normalise_destinations,
    split_host_port,
)


def fake_resolver(table: t.Dict[str, t.List[str]]) -> t.Callable[..., t.Any]:
    def resolve(name: str, *_args: t.Any) -> t.List[t.Any]:
        if name not in table:
            raise socket.gaierror(-2, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 0))
                for a in table[name]]
    return resolve


RESOLVER = fake_resolver({"epns.eset.com": ["198.18.1.10", "2001:db8:0:1::10", "198.18.1.10"],
                          "proxy.lab": ["198.18.1.20", "2001:db8:0:1::20"]})


def test_policy_merges_resolved_and_extra_destinations() -> None:
    policy = build_policy(PolicySpec("epns.eset.com", (8883, 443, 443),
                                     ("91.228.165.144/30", "91.228.165.148/32", "198.18.1.0/24")), RESOLVER)
    (group,) = policy.groups
    assert group.name == "epns" and group.ports == (443, 8883)
    assert group.ipv4 == ("91.228.165.144/30", "91.228.165.148/32", "198.18.1.0/24")  # .10 inside the /24
    assert group.ipv6 == ("2001:db8:0:1::10/128",)
    assert policy.sources == {"epns.eset.com": ["198.18.1.10/32", "2001:db8:0:1::10/128"]}


def test_via_proxy_replaces_or_adds_to_direct() -> None:
    only = build_policy(PolicySpec("epns.eset.com", (8883, 443), via_proxy="proxy.lab:3128"), RESOLVER)
    assert [g.name for g in only.groups] == ["proxy"]
    assert only.groups[0].ports == (3128,) and only.groups[0].ipv6 == ("2001:db8:0:1::20/128",)
    both = build_policy(PolicySpec("epns.eset.com", (8883,), via_proxy="[2001:db8::9]:3128", also_direct=True),
                        RESOLVER)
    assert [g.name for g in both.groups] == ["epns", "proxy"]
    assert both.groups[1].ipv6 == ("2001:db8::9/128",) and both.groups[1].ipv4 == ()


@pytest.mark.parametrize(("spec", "words"), [
    (PolicySpec("nx.invalid", (443,)), "cannot resolve 'nx.invalid'"),
    (PolicySpec("epns.eset.com", (443,), ("10.0.0.1/24",)), "'10.0.0.1/24' has host bits set: the network is "
                                                           "10.0.0.0/24"),
    (PolicySpec("epns.eset.com", (443,), ("10.0.0.256",)), "'10.0.0.256' is not an IPv4/IPv6 address or CIDR"),
    (PolicySpec("epns.eset.com", (0,)), "0 is not a TCP port"),
    (PolicySpec("epns.eset.com", ()), "ports must name at least one"),
    (PolicySpec("epns.eset.com", (443,), via_proxy="http://proxy.lab:3128"), "without a scheme"),
    (PolicySpec("epns.eset.com", (443,), via_proxy="2001:db8::1:3128"), "in brackets"),
    (PolicySpec("epns.eset.com", (443,), via_proxy="proxy.lab:99999"), "99999"),
])
def test_bad_policy_input_names_the_value(spec: PolicySpec, words: str) -> None:
    with pytest.raises(FirewallError) as caught:
        build_policy(spec, RESOLVER)
    assert words in str(caught.value)


def test_split_host_port() -> None:
    assert split_host_port("proxy.lab:3128") == ("proxy.lab", 3128)
    assert split_host_port("[2001:db8::1]:8080") == ("2001:db8::1", 8080)


def test_diff_separates_set_updates_from_structure() -> None:
    before = State({"table t": "owned"}, {"s4": frozenset({"1.1.1.1/32", "2.2.2.0/24"})}, {"r": "rule"})
    after = State({"table t": "owned"}, {"s4": frozenset({"1.1.1.1/32", "3.3.3.3/32"})}, {"r": "rule"})
    change = diff(before, after)
    assert change.sets_only and change.changed
    assert change.as_dict()["sets"]["changed"] == {"s4": {"added": ["3.3.3.3/32"], "removed": ["2.2.2.0/24"]}}
    assert not diff(after, after).changed
    gone = diff(before, State())
    assert gone.containers_removed == {"table t": "owned"} and gone.rules_removed == {"r": "rule"}
    assert gone.sets_removed == {"s4": ["1.1.1.1/32", "2.2.2.0/24"]}


def test_render_is_sorted_and_stable() -> None:
    state = State({"b": "2", "a": "1"}, {"s": frozenset({"10.0.0.0/8", "9.0.0.0/8"})}, {"r": "x"})
    assert state.render() == "a: 1\nb: 2\nset s:\n  9.0.0.0/8\n  10.0.0.0/8\nrule r: x\n"
    assert State().render() == ""


def test_destinations_are_normalised_once_for_the_action_plugin_and_the_module() -> None:
    assert normalise_destinations(["91.228.165.144/30", "91.228.165.148", "91.228.165.146", "2001:db8::/64",
                                   "2001:db8::1"]) == ["91.228.165.144/30", "91.228.165.148/32", "2001:db8::/64"]
    assert normalise_destinations(["10.0.0.0/25", "10.0.0.128/25"]) == ["10.0.0.0/24"]


@pytest.mark.parametrize(("entry", "words"), [
    ("10.0.0.1/24", "'10.0.0.1/24' has host bits set: the network is 10.0.0.0/24 (or write the single address "
                    "as 10.0.0.1/32)"),
    ("2001:db8::1/64", "the network is 2001:db8::/64"),
    ("epns.eset.com", "'epns.eset.com' is not an IPv4/IPv6 address or CIDR"),
    ("10.0.0.0/33", "'10.0.0.0/33' is not"),
])
def test_action_rejects_bad_destinations(entry: str, words: str) -> None:
    with pytest.raises(FirewallError) as caught:
        normalise_destinations(["1.2.3.4", entry])
    assert words in str(caught.value)
    assert str(caught.value).startswith("extra_destinations: ")
