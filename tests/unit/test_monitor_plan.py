"""The monitor plan (plugins/plugin_utils/_monitor_plan/, filter protectnet.epns.monitor_plan): sentinels per egress
and the fleet's connection-rate arithmetic."""
from __future__ import annotations

import typing as t

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.protectnet.epns.plugins.filter.monitor_plan import FilterModule
from ansible_collections.protectnet.epns.plugins.plugin_utils._monitor_plan import (
    PlanError,
    RateSettings,
    egress_key,
    plan_monitor,
    required_interval,
)

SQUID = {"host": "squid.lab", "port": 3128}


def site(prefix: str, count: int, public_ip: t.Optional[str], proxy: t.Any = None) -> t.Dict[str, t.Dict[str, t.Any]]:
    facts: t.Dict[str, t.Any] = {}
    if public_ip:
        facts["eset_public_ip"] = public_ip
    if proxy is not None:
        facts["eset_agent_proxy"] = proxy
    return {f"{prefix}{index:03d}": dict(facts) for index in range(count)}


EGRESS_CASES = [
    # (facts, proxies, expected key)
    ({"eset_public_ip": "203.0.113.7"}, None, "203.0.113.7 direct"),
    ({"eset_public_ip": "203.0.113.7", "eset_agent_proxy": SQUID}, None, "203.0.113.7 via squid.lab:3128"),
    ({"eset_public_ip": "203.0.113.7", "eset_agent_proxy": {"host": "p", "port": None}}, None,
     "203.0.113.7 via p:3128"),
    ({"eset_public_ip": "203.0.113.7", "eset_agent_proxy": {"host": None, "reason": "unknown"}}, None,
     "203.0.113.7 direct"),
    ({"eset_public_ip": "203.0.113.7", "eset_agent_proxy": SQUID}, ["http://other:8080"],
     "203.0.113.7 via http://other:8080"),
    ({}, None, "unknown public address (h1) direct"),
    ({"eset_agent_proxy": SQUID}, None, "unknown public address (h1) via squid.lab:3128"),
]


@pytest.mark.parametrize(("facts", "proxies", "expected"), EGRESS_CASES)
def test_the_egress_is_the_public_address_and_the_proxy_in_effect(facts: t.Dict[str, t.Any],
                                                                  proxies: t.Optional[t.List[str]],
                                                                  expected: str) -> None:
    assert egress_key("h1", facts, proxies) == expected


SENTINEL_CASES = [
    # (name, fleet, options, expected active hosts)
    ("two per egress by default", {**site("a", 5, "198.51.100.1"), **site("b", 3, "198.51.100.2")}, {},
     {"a000", "a001", "b000", "b001"}),
    ("one per egress", {**site("a", 5, "198.51.100.1"), **site("b", 3, "198.51.100.2")}, {"per_egress": 1},
     {"a000", "b000"}),
    ("the proxy splits a site", {**site("a", 3, "198.51.100.1"), **site("p", 3, "198.51.100.1", SQUID)},
     {"per_egress": 1}, {"a000", "p000"}),
    ("no public address: each its own egress", site("x", 3, None), {"per_egress": 1}, {"x000", "x001", "x002"}),
    ("all active by option", site("a", 4, "198.51.100.1"), {"all_active": True}, {"a000", "a001", "a002", "a003"}),
    ("an excluded host is never a sentinel",
     {**site("a", 3, "198.51.100.1"), "a000": {"eset_public_ip": "198.51.100.1", "epns_probe_supported": False}},
     {"per_egress": 1}, {"a001"}),
    ("a skipped host is passive even with all active",
     {**site("a", 2, "198.51.100.1"), "a001": {"eset_public_ip": "198.51.100.1", "epns_host_support_skip": True}},
     {"all_active": True}, {"a000"}),
]


@pytest.mark.parametrize(("fleet", "options", "expected"), [case[1:] for case in SENTINEL_CASES],
                         ids=[case[0] for case in SENTINEL_CASES])
def test_sentinels_are_one_or_two_hosts_per_egress(fleet: t.Dict[str, t.Any], options: t.Dict[str, t.Any],
                                                   expected: t.Set[str]) -> None:
    plan = plan_monitor(fleet, **options)
    assert {name for name, host in plan.hosts.items() if host.active} == expected
    assert set(plan.hosts) == set(fleet)
    for name, host in plan.hosts.items():
        assert host.reason.startswith("active" if name in expected else "passive"), host
        assert (host.connections_per_run > 0) == host.active
    assert sum(group["hosts"] for group in plan.egresses) == len(fleet)


def test_the_choice_is_stable_whatever_the_order_of_the_hosts() -> None:
    fleet = site("a", 50, "198.51.100.1")
    reordered = dict(reversed(list(fleet.items())))
    assert plan_monitor(fleet).as_dict() == plan_monitor(reordered).as_dict()


RATE_CASES = [
    # (connections per run, settings, expected (interval, hold_every))
    (0, RateSettings(), (15, 1440)),
    (4, RateSettings(), (15, 1440)),
    # 900 connections at 1/s: budget 60/min, holds 900/1440 = 0.625/min, runs ceil(900 / 59.375) = 16 -> 20 min
    (900, RateSettings(), (20, 1440)),
    # 10,000 connections: ceil(10000 / (60 - 10000/1440)) = ceil(188.5) = 189 -> 240 min (4 h divides a day)
    (10_000, RateSettings(), (240, 1440)),
    # 40,000: holds would take over half the budget, so hold_every = ceil(2 * 40000 / 60) = 1334 -> 1440 stays;
    # runs ceil(40000 / (60 - 40000/1440)) = ceil(1244.4) = 1245 -> 1440
    (40_000, RateSettings(), (1440, 1440)),
    (10_000, RateSettings(max_connections_per_second=10.0), (20, 1440)),
    (10, RateSettings(min_interval_minutes=30), (30, 1440)),
    (10, RateSettings(min_interval_minutes=25), (30, 1440)),  # 25 is no even interval: 30
    (2, RateSettings(min_interval_minutes=1), (1, 1440)),  # the lab's short interval
]


@pytest.mark.parametrize(("total", "settings", "expected"), RATE_CASES)
def test_the_interval_keeps_the_fleet_under_the_cap(total: int, settings: RateSettings,
                                                    expected: t.Tuple[int, int]) -> None:
    interval, hold_every = required_interval(total, settings)
    assert (interval, hold_every) == expected
    rate = total / (60.0 * interval) + total / (60.0 * hold_every)
    assert rate <= settings.max_connections_per_second + 1e-9
    assert interval >= settings.min_interval_minutes and hold_every >= interval


def test_a_fleet_that_would_need_more_than_a_day_is_refused_with_what_to_change() -> None:
    with pytest.raises(PlanError, match=r"100000 connections per run need an interval of 3333 minutes.*fewer active"):
        required_interval(100_000, RateSettings())


def test_the_schedule_writes_the_arithmetic_out() -> None:
    fleet = {**site("a", 2000, None), **site("p", 1000, None, SQUID)}  # unknown egress: every host active
    schedule = plan_monitor(fleet).schedule
    assert schedule["active_hosts"] == 3000 and schedule["connections_per_run"] == 2000 * 2 + 1000 * 4
    assert schedule["interval_minutes"] == 180  # ceil(8000 / (60 - 8000/1440)) = ceil(146.9) = 147 -> 3 h
    assert schedule["connections_per_second"] <= 1.0
    assert schedule["mqtt_every_minutes"] == 180  # never more often than the interval
    assert "8000 / (180 * 60) + 8000 / (1440 * 60)" in schedule["arithmetic"]


@pytest.mark.parametrize(("options", "settings", "message"), [
    ({"per_egress": 3}, RateSettings(), "sentinels_per_egress is 3: use 1 or 2"),
    ({}, RateSettings(max_connections_per_second=0), "max_connections_per_second is 0"),
    ({}, RateSettings(max_connections_per_second="fast"), "max_connections_per_second is 'fast'"),  # type: ignore
    ({}, RateSettings(min_interval_minutes=0), "min_interval_minutes is 0"),
    ({}, RateSettings(hold_every_minutes=True), "hold_every_minutes is True"),
])
def test_bad_settings_are_named(options: t.Dict[str, t.Any], settings: RateSettings, message: str) -> None:
    with pytest.raises(PlanError, match=message.replace("(", r"\(")):
        plan_monitor(site("a", 1, "198.51.100.1"), settings=settings, **options)


def test_the_filter_reads_hostvars_and_names_bad_input() -> None:
    monitor_plan = FilterModule().filters()["monitor_plan"]
    hostvars = {"h1": {"eset_public_ip": "198.51.100.1", "unrelated": "x"}, "h2": {"eset_public_ip": "198.51.100.1"},
                "h3": {"eset_public_ip": "198.51.100.1"}}
    plan = monitor_plan(hostvars, ["h1", "h2", "h3"], sentinels_per_egress=1)
    assert [name for name, host in plan["hosts"].items() if host["active"]] == ["h1"]
    assert plan["egresses"] == [{"egress": "198.51.100.1 direct", "hosts": 3, "sentinels": ["h1"]}]
    with pytest.raises(AnsibleFilterError, match=r"no variables for \['nope'\]"):
        monitor_plan(hostvars, ["nope"])
    with pytest.raises(AnsibleFilterError, match="hosts is 'h1': give a list"):
        monitor_plan(hostvars, "h1")
    with pytest.raises(AnsibleFilterError, match="sentinels_per_egress is 0"):
        monitor_plan(hostvars, ["h1"], sentinels_per_egress=0)


def test_every_interval_the_plan_picks_is_one_the_runner_module_accepts() -> None:
    from ansible_collections.protectnet.epns.plugins.module_utils._monitor._install import InstallError, check_interval
    from ansible_collections.protectnet.epns.plugins.plugin_utils._monitor_plan._plan import EVEN_INTERVALS

    for minutes in EVEN_INTERVALS:
        assert check_interval(minutes, allow_short=True) == minutes
    for minutes in range(1, 1441):
        if minutes not in EVEN_INTERVALS:
            with pytest.raises(InstallError):
                check_interval(minutes, allow_short=True)
