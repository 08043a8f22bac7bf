"""The precedence model of eset_agent_proxy (_eset_policy/_effective): ESET's order and merge rules, table-driven."""
from __future__ import annotations

import typing as t

import pytest
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._resources import GroupIndex
from ansible_collections.protectnet.epns.plugins.module_utils._eset_policy import _codec as codec
from ansible_collections.protectnet.epns.plugins.module_utils._eset_policy._effective import (
    UNKNOWN_REASON,
    AgentPolicies,
    AppliedPolicy,
    dynamic_candidates,
    effective_proxy,
    leaf_flags,
    mapped_settings,
    target_order,
)
from ansible_collections.protectnet.epns.plugins.module_utils._eset_policy._settings_map import MapError, build_map

from tests.emulator.policydata import format1, format2

MAP = build_map()
APPLY, FORCE, NOT_APPLY = 4, 4 | 1, 0


def policy(name: str, flags: int = APPLY, **values: t.Any) -> AppliedPolicy:
    return AppliedPolicy(name, name, "t", {k.replace("__", "."): (str(v), bool(flags & 1)) for k, v in values.items()})


def proxy(host: str, port: int = 3128, flags: int = APPLY, name: str = "p") -> AppliedPolicy:
    return policy(name, flags, proxy_mode=0, services__global__use=1, services__global__host=host,
                  services__global__port=port)


# (case, policies in application order, expected host, port, from_policies)
MERGE_CASES = [
    ("a later policy wins", [proxy("a", name="p1"), proxy("b", name="p2")], "b", ["p1", "p2"]),
    ("the first forced wins over a later apply", [proxy("a", flags=FORCE, name="p1"), proxy("b", name="p2")],
     "a", ["p1"]),
    ("the first forced wins over a later forced", [proxy("a", flags=FORCE, name="p1"),
                                                   proxy("b", flags=FORCE, name="p2")], "a", ["p1"]),
    ("a later forced overwrites an earlier apply", [proxy("a", name="p1"), proxy("b", flags=FORCE, name="p2")],
     "b", ["p1", "p2"]),
    ("only the host of the later one", [proxy("a", 8080, name="p1"),
                                        policy("p2", services__global__host="b")], "b", ["p1", "p2"]),
]


@pytest.mark.parametrize("case,policies,host,names", MERGE_CASES, ids=[c[0] for c in MERGE_CASES])
def test_merge_follows_the_flags(case: str, policies: t.List[AppliedPolicy], host: str, names: t.List[str]) -> None:
    result = effective_proxy(policies, MAP)
    assert result["host"] == host
    assert [p["name"] for p in result["from_policies"]] == names
    assert result["map_confirmed"] is False and result["reason"] is None


def test_a_later_host_keeps_the_earlier_port() -> None:
    assert effective_proxy([proxy("a", 8080), policy("p2", services__global__host="b")], MAP)["port"] == 8080


@pytest.mark.parametrize("policies", [[], [policy("p", connection=1)], [policy("p", fallback_direct=1)]])
def test_no_policy_setting_a_proxy_is_unknown_never_direct(policies: t.List[AppliedPolicy]) -> None:
    result = effective_proxy(policies, MAP)
    assert result["host"] is None and result["reason"] == UNKNOWN_REASON
    assert "direct" not in result["reason"]


def test_a_policy_that_turns_the_proxy_off_says_so() -> None:
    result = effective_proxy([proxy("a"), policy("off", services__global__use=0)], MAP)
    assert result["host"] is None and result["reason"].startswith("direct: the policies turn the proxy off")


def test_per_service_mode_takes_the_eset_services_proxy() -> None:
    per = policy("per", proxy_mode=1, services__eset_services__use=1, services__eset_services__host="svc",
                 services__eset_services__port=3129, services__replication__use=1,
                 services__replication__host="svc", services__replication__port=3129, fallback_direct=0)
    result = effective_proxy([proxy("global-one"), per], MAP)
    assert (result["host"], result["port"], result["services"]) == ("svc", 3129, ["replication", "eset_services"])
    assert result["fallback_direct"] is False


# (case, static path, dynamic (uuid, parent) in list order, expected order)
ORDER_CASES = [
    ("static only", ["All", "Linux", "Servers"], [], ["All", "Linux", "Servers", "dev"]),
    ("a dynamic group under All comes after the level-1 static group", ["All", "Linux"], [("D1", "All")],
     ["All", "Linux", "D1", "dev"]),
    ("a dynamic group under the device's own group comes after it", ["All", "Linux"], [("D2", "Linux")],
     ["All", "Linux", "D2", "dev"]),
    ("dynamic children depth first, in list order", ["All", "Linux", "Servers"],
     [("D1", "All"), ("D3", "All"), ("D2", "D1")], ["All", "Linux", "D1", "D2", "D3", "Servers", "dev"]),
    ("a dynamic group off the path goes last before the device", ["All"], [("X", "elsewhere")], ["All", "X", "dev"]),
]


@pytest.mark.parametrize("case,path,dynamic,order", ORDER_CASES, ids=[c[0] for c in ORDER_CASES])
def test_target_order_is_esets(case: str, path: t.List[str], dynamic: t.List[t.Tuple[str, str]],
                               order: t.List[str]) -> None:
    assert target_order(path, dynamic, "dev") == order


@pytest.mark.parametrize("flags,expected", [("4", (True, False)), (5, (True, True)), (1, (True, True)),
                                            (0, (False, False)), ("x", (False, False))])
def test_leaf_flags(flags: t.Any, expected: t.Tuple[bool, bool]) -> None:
    assert leaf_flags({"ce_flags": flags, "ce_value": "1"}, MAP["flags"]) == expected


def test_a_leaf_without_value_is_not_applied() -> None:
    assert leaf_flags({"ce_flags": 4}, MAP["flags"]) == (False, False)


def _nodes(host: str, flags: int = APPLY, port_flags: t.Optional[int] = None) -> t.Dict[str, t.Any]:
    def leaf(value: t.Any, bits: int = flags) -> t.Dict[str, t.Any]:
        return {"ce_flags": bits, "ce_type": 1, "ce_value": value}
    return {"HttpProxy": {"ce_flags": 0, "ProxyConfigurationType": leaf(0), "Global": {
        "ce_flags": 0, "UseProxy": leaf(1), "Host": leaf(host),
        "Port": leaf(3128, flags if port_flags is None else port_flags)}}}


@pytest.mark.parametrize("data", [format1("agent", {"settings": _nodes("h")}),
                                  format2("agent", "12.0", {}, data={"settings": _nodes("h")})],
                         ids=["format 1", "format 2"])
def test_mapped_settings_reads_both_formats(data: str) -> None:
    values = mapped_settings(codec.decode(data), MAP)
    assert values["services.global.host"] == ("h", False)
    assert values["services.global.port"] == ("3128", False)


def test_not_apply_leaves_are_skipped() -> None:
    values = mapped_settings(codec.decode(format1("agent", {"settings": _nodes("h", port_flags=NOT_APPLY)})), MAP)
    assert "services.global.port" not in values and values["services.global.host"] == ("h", False)


def test_the_flag_bits_are_overridable_and_validated() -> None:
    other = build_map({"flags": {"force": 8}})
    assert leaf_flags({"ce_flags": 12, "ce_value": "1"}, other["flags"]) == (True, True)
    assert leaf_flags({"ce_flags": 5, "ce_value": "1"}, other["flags"]) == (True, False)
    for bad, word in [({"force": 3}, "one ce_flags bit"), ({"force": 4}, "different bits"),
                      ({"force": True}, "one ce_flags bit"), ({"extra": 2}, "exactly apply and force")]:
        with pytest.raises(MapError, match=word):
            build_map({"flags": bad})


GROUPS = [{"uuid": "all", "displayName": "All"}, {"uuid": "lin", "displayName": "Linux", "parentGroupUuid": "all"},
          {"uuid": "dyn", "displayName": "Dyn", "parentGroupUuid": "all"},
          {"uuid": "win", "displayName": "Windows", "parentGroupUuid": "all"}]
DEVICES = [{"uuid": "d1", "displayName": "one", "parentGroupUuid": "lin"}]


def _policy(uuid: str, host: str, flags: int = APPLY, product: str = "eset.local.products.agent") -> t.Dict[str, t.Any]:
    return {"uuid": uuid, "displayName": uuid, "features": [{"featureId": 4294967295, "configuration": {
        "@type": "type.googleapis.com/Era.Common.DataDefinition.Policy.PolicyData", "product": product,
        "data": format1("agent", {"settings": _nodes(host, flags)})}}]}


def _assign(policy_uuid: str, kind: str, target: str, rank: int) -> t.Dict[str, t.Any]:
    return {"policyUuid": policy_uuid, "target": {kind: target}, "rank": rank}


def test_only_groups_off_every_static_path_need_members() -> None:
    assignments = [_assign("p", "deviceGroupUuid", g, 1) for g in ("all", "lin", "dyn", "win")]
    assert dynamic_candidates(assignments, GroupIndex(GROUPS), DEVICES) == ["dyn", "win"]


def test_a_device_gets_group_dynamic_and_device_policies_in_order() -> None:
    policies = [_policy("on-all", "a"), _policy("on-lin-1", "b"), _policy("on-lin-2", "c"), _policy("on-dyn", "d"),
                _policy("on-dev", "e"), _policy("endpoint", "z", product="eset.local.products.endpoint")]
    assignments = [_assign("on-dev", "deviceUuid", "d1", 1), _assign("on-lin-2", "deviceGroupUuid", "lin", 2),
                   _assign("on-lin-1", "deviceGroupUuid", "lin", 1), _assign("on-all", "deviceGroupUuid", "all", 1),
                   _assign("on-dyn", "deviceGroupUuid", "dyn", 1), _assign("endpoint", "deviceUuid", "d1", 2)]
    index = AgentPolicies(policies, assignments, GROUPS, {"dyn": {"d1"}}, MAP, pytest.fail)
    applied = index.applied(DEVICES[0])
    assert [(p.name, p.target) for p in applied] == [
        ("on-all", "group All"), ("on-lin-1", "group All/Linux"), ("on-lin-2", "group All/Linux"),
        ("on-dyn", "group All/Dyn"), ("on-dev", "device one")]
    assert index.proxy(DEVICES[0])["host"] == "e"
    not_member = AgentPolicies(policies, assignments, GROUPS, {"dyn": set()}, MAP, pytest.fail)
    assert [p.name for p in not_member.applied(DEVICES[0])] == ["on-all", "on-lin-1", "on-lin-2", "on-dev"]


def test_an_undecodable_agent_policy_is_warned_about_and_left_out() -> None:
    broken = _policy("broken", "a")
    broken["features"][0]["configuration"]["data"] = "not base64!"
    warnings: t.List[str] = []
    index = AgentPolicies([broken], [_assign("broken", "deviceUuid", "d1", 1)], GROUPS, {}, MAP, warnings.append)
    assert index.proxy(DEVICES[0])["reason"] == UNKNOWN_REASON
    assert "'broken'" in warnings[0]
