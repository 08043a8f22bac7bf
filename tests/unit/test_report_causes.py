"""Causes first: failing cells grouped by failure class x stage x path, with the fix and what it would bring back."""
from __future__ import annotations

import copy

import pytest
from _report_fixtures import fleet, load
from ansible_collections.protectnet.epns.plugins.plugin_utils._report._model import build_report
from ansible_collections.protectnet.epns.plugins.plugin_utils._report._normalise import normalize_phases


def model(results: dict, **kwargs) -> dict:
    return build_report(normalize_phases(results=results), **kwargs)


def by_column(report: dict) -> dict:
    return {(c["column"], c["failure_class"], c["stage"]): c for c in report["causes"]}


RECORDED = model(fleet(agent11=load("unreachable")))

# (path, class, stage) -> hosts, would_reach, host names
EXPECTED = [
    (("8883 direct", "tcp_timeout", "tcp"), 3, 3, ["agent2", "agent3", "agent11"]),
    # the degraded host's 443 direct failing changes nothing for it: 443 via the proxy already works
    (("443 direct", "tcp_timeout", "tcp"), 3, 2, ["agent2", "agent3", "agent11"]),
    (("8883 direct", "dns_no_answer", "dns"), 1, 1, ["agent4"]),
    (("443 direct", "dns_no_answer", "dns"), 1, 1, ["agent4"]),
    (("8883 via http://proxy.lab:3128", "proxy_refused", "proxy_connect"), 1, 1, ["agent2"]),
]


@pytest.mark.parametrize(("key", "hosts", "would_reach", "names"), EXPECTED, ids=[" ".join(e[0]) for e in EXPECTED])
def test_each_cause_counts_its_hosts_and_what_its_fix_brings_back(key, hosts, would_reach, names):
    cause = by_column(RECORDED)[key]
    assert (cause["hosts"], cause["would_reach"], cause["host_names"]) == (hosts, would_reach, names)
    assert cause["role"] == "epns"
    assert cause["fix"], "every cause says what to change"
    assert cause["id"].startswith("cause-") and " " not in cause["id"]


def test_only_failing_paths_are_causes_and_the_biggest_comes_first():
    assert len(RECORDED["causes"]) == len(EXPECTED)
    counts = [(c["hosts"], c["would_reach"]) for c in RECORDED["causes"]]
    assert counts == sorted(counts, reverse=True)
    assert RECORDED["causes"][0]["title"] == "8883 direct: dropped on the way"
    assert len({c["id"] for c in RECORDED["causes"]}) == len(RECORDED["causes"])


def test_a_healthy_fleet_has_no_causes():
    assert model({"a": load("healthy"), "b": load("proven_by_auth")})["causes"] == []


def test_server_path_failures_are_their_own_causes_and_never_bring_a_host_back():
    result = load("healthy")
    result["server_paths"] = [{"id": "2222 server", "port": 2222, "role": "server", "proxy": None, "ok": False,
                               "failure": {"class": "tcp_refused", "stage": "tcp", "hint": "start the server"},
                               "attempts": []}]
    result["server_verdict"] = "unreachable"
    cause = model({"a": result})["causes"][0]
    assert (cause["role"], cause["hosts"], cause["would_reach"], cause["fix"]) == ("server", 1, 0, "start the server")


def test_the_comparison_counts_hosts_per_cause_before_and_after():
    before = {"a": load("unreachable"), "b": load("unreachable"), "c": load("degraded")}
    after = {"a": load("healthy"), "b": load("unreachable"), "c": copy.deepcopy(load("degraded"))}
    report = build_report(normalize_phases(phases=[{"phase": "before", "results": before},
                                                   {"phase": "after", "results": after}]))
    rows = {(c["column"], c["failure_class"]): c for c in report["comparison"]["causes"]}
    assert {k: (r["before"], r["after"], r["delta"]) for k, r in rows.items()} == {
        ("8883 direct", "tcp_timeout"): (3, 2, -1),
        ("443 direct", "tcp_timeout"): (3, 2, -1),
        ("8883 via http://proxy.lab:3128", "proxy_refused"): (1, 1, 0),
    }
    assert report["comparison"]["causes"][-1]["delta"] == 0, "the biggest change first"
