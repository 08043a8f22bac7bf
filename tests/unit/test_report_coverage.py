"""ESET's view beside the probe's: coverage, inferred lines for devices Ansible cannot probe, published addresses."""
from __future__ import annotations

import typing as t

import pytest
from _report_fixtures import load
from ansible_collections.protectnet.epns.plugins.plugin_utils._report._model import FleetContext, build_report
from ansible_collections.protectnet.epns.plugins.plugin_utils._report._normalise import (
    ReportInputError,
    normalize_phases,
)

NOW = "2026-01-10T12:00:00Z"
SKIP = {"skipped": True, "skip_reason": "not Linux"}


def device(os_family: str = "linux", public_ip: str = "203.0.113.1", local_ip: str = "10.0.1.20",
           proxy: t.Optional[str] = None, in_play: bool = True, last_sync: str = "2026-01-10T11:00:00Z",
           **more: t.Any) -> dict:
    info = {"eset_uuid": f"uuid-{local_ip}", "eset_display_name": f"PC {local_ip}", "eset_os_family": os_family,
            "eset_public_ip": public_ip, "eset_local_ip": local_ip, "eset_last_sync": last_sync,
            "epns_probe_supported": os_family == "linux", "in_play": in_play, **more}
    if proxy:
        info["eset_agent_proxy"] = {"host": proxy, "port": 3128}
    return info


def build(results: dict, hosts_info: t.Optional[dict], **fleet) -> dict:
    return build_report(normalize_phases(results=results), generated_at=NOW,
                        fleet=FleetContext(hosts_info=hosts_info, **fleet))


def test_without_eset_data_there_is_no_coverage_and_unprobed_hosts_are_unknown():
    report = build({"a": load("healthy"), "b": {"unreachable": True, "msg": "ssh timed out"}}, None)
    assert report["coverage"] is None
    assert [(i["host"], i["text"], i["from_host"]) for i in report["inferred"]] == [("b", "unknown", None)]


REASONS = [
    ("windows", device("windows", in_play=False), "windows"),
    ("macos", device("macos", in_play=False), "macos"),
    ("android", device("android", in_play=False), "other_os"),
    ("linux outside the play", device("linux", in_play=False), "not_in_play"),
    ("linux Ansible cannot reach", device("linux"), "unreachable"),
]


@pytest.mark.parametrize(("info", "reason"), [r[1:] for r in REASONS], ids=[r[0] for r in REASONS])
def test_coverage_says_why_a_device_eset_knows_was_not_probed(info, reason):
    results = {"probed": load("healthy")}
    if reason == "unreachable":
        results["x"] = {"unreachable": True, "msg": "ssh: connection timed out"}
    report = build(results, {"probed": device(local_ip="10.0.1.5"), "x": info})
    assert [(n["host"], n["reason"]) for n in report["coverage"]["not_probed"]] == [("x", reason)]
    assert report["coverage"]["not_probed"][0]["text"]
    assert report["summary"]["total"] == len(results), "a device outside the play is never a row"


def test_coverage_lists_hosts_unknown_to_eset_and_devices_the_inventory_left_out():
    report = build({"a": load("healthy"), "b": load("healthy")}, {"a": device()},
                   eset_inventory={"left_out": [{"uuid": "u9", "display_name": "clone", "reason": "older clone"}]})
    assert report["coverage"]["unknown_to_eset"] == ["b"]
    assert [(n["host"], n["reason"], n["text"]) for n in report["coverage"]["not_probed"]] == [
        ("clone", "excluded", "older clone")]


STALE = [
    ("two days old, default 1d", "2026-01-08T12:00:00Z", "1d", True),
    ("an hour old, default 1d", "2026-01-10T11:00:00Z", "1d", False),
    ("two days old, threshold 3d", "2026-01-08T12:00:00Z", "3d", False),
    ("two hours old, threshold 90m", "2026-01-10T10:00:00Z", "90m", True),
    ("nanoseconds as ESET's JSON may give them", "2026-01-08T12:00:00.123456789Z", "1d", True),
    ("no time at all", None, "1d", False),
]


@pytest.mark.parametrize(("last_sync", "stale_after", "stale"), [s[1:] for s in STALE], ids=[s[0] for s in STALE])
def test_stale_agents_are_listed_beside_their_verdict(last_sync, stale_after, stale):
    report = build({"a": load("unreachable")}, {"a": device(last_sync=last_sync)}, stale_after=stale_after)
    listed = report["coverage"]["stale"]
    assert bool(listed) is stale
    if stale:
        assert listed[0]["state"] == "unreachable" and listed[0]["last_sync"] == last_sync
        assert listed[0]["age_seconds"] > report["coverage"]["stale_after_seconds"]


@pytest.mark.parametrize("bad", ["1w", "soon", "-1d", ""])
def test_a_bad_stale_after_names_the_value_and_what_is_accepted(bad):
    with pytest.raises(ReportInputError, match=r"stale_after .*30m, 12h or 1d.*" + repr(bad).replace("'", "")):
        build({"a": load("healthy")}, {"a": device()}, stale_after=bad)


LINUX = "10.0.1.5"
INFERRED = [
    ("no neighbour", {}, None),
    ("a probed Linux neighbour behind the same public address, prefix and proxy", {"lin": device(local_ip=LINUX)},
     "lin"),
    ("a neighbour with another proxy", {"lin": device(local_ip=LINUX, proxy="proxy.site")}, None),
    ("a neighbour on another local prefix", {"lin": device(local_ip="10.0.2.5")}, None),
    ("a neighbour behind another public address", {"lin": device(local_ip=LINUX, public_ip="198.51.100.9")}, None),
]


@pytest.mark.parametrize(("neighbours", "from_host"), [i[1:] for i in INFERRED], ids=[i[0] for i in INFERRED])
def test_a_windows_device_is_inferred_only_from_a_true_neighbour(neighbours, from_host):
    results = {host: load("degraded") for host in neighbours}
    results["win"] = SKIP
    report = build(results, {"win": device("windows", local_ip="10.0.1.77", epns_host_support_skip=SKIP),
                             **neighbours})
    line = next(i for i in report["inferred"] if i["host"] == "win")
    assert line["from_host"] == from_host
    if from_host is None:
        assert (line["text"], line["neighbour_state"], line["egress"]) == ("unknown", None, None)
    else:
        assert line["neighbour_state"] == "degraded"
        assert line["text"].startswith("the path of site ") and line["text"].endswith("as shown by host lin")
        assert line["basis"] == {"public_ip": "203.0.113.1", "local_prefix": "10.0.1.0/24", "proxy": None}
    win = next(r for r in report["phases"][-1]["rows"] if r["host"] == "win")
    assert win["state"] == "not_probed" and win["verdict"] is None, "an inferred line is never a verdict"
    assert report["summary"]["reachable"] + report["summary"]["degraded"] == len(neighbours)


def test_inferred_devices_count_in_their_egress_group_but_never_as_probed():
    hosts_info = {"lin": device(local_ip=LINUX), "mac": device("macos", local_ip="10.0.1.8", in_play=False),
                  "win": device("windows", local_ip="10.0.1.9", in_play=False)}
    report = build({"lin": load("healthy")}, hosts_info)
    group = report["egress"][0]
    assert (group["hosts"], group["host_names"], group["inferred_names"]) == (1, ["lin"], ["mac", "win"])
    assert group["states"]["inferred"] == 2 and group["states"]["reachable"] == 1
    assert [r["host"] for r in report["phases"][-1]["rows"]] == ["lin"]


def outside_of(published: t.Set[str]) -> t.Callable[[t.Sequence[str]], t.List[str]]:
    return lambda addresses: [a for a in addresses if a not in published]


def test_an_answer_outside_the_published_addresses_warns_and_never_changes_a_verdict():
    results = {"a": load("healthy"), "b": load("ipv6_fails"), "c": load("dns_no_answer")}
    plain = build(results, None)
    warned = build(results, None, published={"source": "KB332", "date": "2026-01-01", "path": "x.yml"},
                   outside_published=outside_of({"198.18.1.10"}))
    assert [(w["kind"], w["host"], w["address"]) for w in warned["warnings"]] == [
        ("outside_published", "b", "2001:db8:0:1::10")]
    assert "2001:db8:0:1::10" in warned["warnings"][0]["text"]
    assert warned["published"] == {"source": "KB332", "date": "2026-01-01", "path": "x.yml"}
    assert [r["state"] for r in warned["phases"][-1]["rows"]] == [r["state"] for r in plain["phases"][-1]["rows"]]
    assert warned["summary"] == plain["summary"] and warned["causes"] == plain["causes"]
    assert plain["warnings"] == [] and plain["published"] is None
