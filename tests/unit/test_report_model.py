"""The fleet report model (plugins/plugin_utils/_report/): a pure function of probe results."""

from __future__ import annotations

import copy
import json
import random

import pytest
from _report_fixtures import fleet as recorded_fleet
from _report_fixtures import load
from ansible_collections.protectnet.epns.plugins.plugin_utils._report._model import build_report
from ansible_collections.protectnet.epns.plugins.plugin_utils._report._normalise import (
    ReportInputError,
    normalize_phases,
)

PROXY = "http://proxy.lab:3128"


def fleet() -> dict:
    return recorded_fleet(
        agent6={"unreachable": True, "msg": "Failed to connect to the host via ssh: Connection timed out"},
        agent7={"failed": True, "msg": "MODULE FAILURE: /usr/bin/python3: not found"})


def report(results=None, **kwargs) -> dict:
    phases = normalize_phases(results=fleet() if results is None else results, phase=kwargs.pop("phase", None))
    return build_report(phases, **kwargs)


def row(model: dict, host: str, phase: int = -1) -> dict:
    return next(r for r in model["phases"][phase]["rows"] if r["host"] == host)


def cell(model: dict, host: str, column: str, phase: int = -1) -> dict:
    ph = model["phases"][phase]
    index = next(c["index"] for c in ph["columns"] if c["id"] == column)
    return row(model, host, phase)["cells"][index]


def test_columns_are_the_union_in_schema_order():
    model = report()
    assert [c["id"] for c in model["phases"][0]["columns"]] == [
        "8883 direct",
        "443 direct",
        f"8883 via {PROXY}",
        f"443 via {PROXY}",
    ]
    assert [c["index"] for c in model["phases"][0]["columns"]] == [0, 1, 2, 3]


def test_column_order_does_not_depend_on_path_order_or_host_names():
    degraded = load("degraded")
    degraded["paths"].reverse()
    second = load("degraded")
    for path in second["paths"]:
        if path["proxy"]:
            path["proxy"] = "http://b-proxy:8080"
            path["id"] = path["id"].replace(PROXY, "http://b-proxy:8080")
    model = report({"a-first": degraded, "b-second": second, "c": load("healthy")})
    assert [c["id"] for c in model["phases"][0]["columns"]] == [
        "8883 direct",
        "443 direct",
        f"8883 via {PROXY}",
        f"443 via {PROXY}",
        "8883 via http://b-proxy:8080",
        "443 via http://b-proxy:8080",
    ]


def test_rows_are_sorted_naturally_and_states_are_right():
    model = report()
    rows = model["phases"][0]["rows"]
    assert [r["host"] for r in rows] == [
        "agent1",
        "agent2",
        "agent3",
        "agent4",
        "agent5",
        "agent6",
        "agent7",
        "agent10",
    ]
    assert {r["host"]: r["state"] for r in rows} == {
        "agent1": "reachable",
        "agent2": "degraded",
        "agent3": "unreachable",
        "agent4": "unreachable",
        "agent5": "reachable",
        "agent6": "not_probed",
        "agent7": "not_probed",
        "agent10": "reachable",
    }


def test_totals_and_summary():
    model = report()
    expected = {"reachable": 3, "degraded": 1, "unreachable": 2, "not_probed": 2, "total": 8}
    assert model["phases"][0]["totals"] == expected
    assert model["summary"] == expected
    totals = {c["column"]: (c["working"], c["failed"], c["tested"]) for c in model["phases"][0]["column_totals"]}
    assert totals == {
        "8883 direct": (3, 3, 6),
        "443 direct": (3, 3, 6),
        f"8883 via {PROXY}": (0, 1, 1),
        f"443 via {PROXY}": (1, 0, 1),
    }


def test_degraded_host_behind_a_443_only_proxy():
    model = report()
    refused = cell(model, "agent2", f"8883 via {PROXY}")
    assert refused["state"] == "failed"
    assert refused["failure_class"] == "proxy_refused"
    assert refused["stage"] == "proxy_connect"
    assert refused["proxy_status"] == "HTTP/1.1 403 Forbidden"
    assert "403" in refused["message"]
    assert refused["hint"]
    assert refused["text"] == "proxy_refused at proxy_connect"
    works = cell(model, "agent2", f"443 via {PROXY}")
    assert works["state"] == "ok"
    assert works["tone"] == "fallback"  # amber: the host relies on a fallback
    assert works["proxy_status"] == "HTTP/1.1 200 Connection established"
    assert works["tls_issuer"] == "CN=Lab EPNS CA, O=protectnet lab"
    direct = cell(model, "agent2", "8883 direct")
    assert (direct["failure_class"], direct["stage"], direct["elapsed_ms"]) == ("tcp_timeout", "tcp", 3001)
    assert row(model, "agent2")["working_fallback"] == f"443 via {PROXY}"
    assert [p["column"] for p in row(model, "agent2")["problems"]] == ["8883 direct", "443 direct", f"8883 via {PROXY}"]


def test_unreachable_host_and_not_tested_proxy_columns():
    model = report()
    for column in ("8883 direct", "443 direct"):
        c = cell(model, "agent3", column)
        assert (c["state"], c["failure_class"], c["tone"]) == ("failed", "tcp_timeout", "failed")
    c = cell(model, "agent3", f"443 via {PROXY}")
    assert (c["state"], c["tone"], c["text"]) == ("not_tested", "none", "not tested")


def test_proven_by_auth():
    c = cell(report(), "agent10", "8883 direct")
    assert c["state"] == "proven_by_auth"
    assert c["tone"] == "auth"
    assert c["ok"] is True
    assert "credentials" in c["note"] or "CONNECT" in c["note"]
    assert c["text"] == "ok (proven by auth) 37 ms"


def test_dns_no_answer_and_legend_from_the_collection():
    model = report()
    r = row(model, "agent4")
    assert r["dns"]["ok"] is False
    assert r["dns"]["failure_class"] == "dns_no_answer"
    assert cell(model, "agent4", "8883 direct")["stage"] == "dns"
    legend = {e["class"]: e for e in model["phases"][0]["failure_classes"]}
    assert sorted(legend) == ["dns_no_answer", "mqtt_refused", "proxy_refused", "tcp_timeout", "tcp_unreachable"]
    assert (legend["dns_no_answer"]["hosts"], legend["dns_no_answer"]["paths"]) == (1, 2)
    assert (legend["tcp_timeout"]["hosts"], legend["tcp_timeout"]["paths"]) == (2, 4)
    assert (legend["tcp_unreachable"]["hosts"], legend["tcp_unreachable"]["paths"]) == (1, 0)
    # The broker's refusal that proved agent10's path stays on its attempt, so it is explained but fails no path.
    assert (legend["mqtt_refused"]["hosts"], legend["mqtt_refused"]["paths"]) == (1, 0)
    assert legend["tcp_timeout"]["explanation"]  # from module_utils/_epns.py
    assert legend["proxy_refused"]["hint"].startswith("Allow CONNECT")  # the probe's own hint wins


def test_class_info_can_be_given():
    model = report(class_info={"tcp_timeout": "dropped", "proxy_refused": {"explanation": "no", "hint": "h"}})
    legend = {e["class"]: e for e in model["phases"][0]["failure_classes"]}
    assert legend["tcp_timeout"]["explanation"] == "dropped"
    assert legend["proxy_refused"]["explanation"] == "no"
    assert legend["dns_no_answer"]["explanation"] is None


def test_ipv6_fails_while_ipv4_works():
    c = cell(report(), "agent5", "8883 direct")
    assert c["state"] == "ok"
    assert c["address_notes"] == [
        "IPv6 2001:db8:0:1::10: tcp_unreachable at tcp (network is unreachable)",
        "IPv4 198.18.1.10: ok",
    ]
    assert [a["family"] for a in c["attempts"]] == ["ipv6", "ipv4"]
    assert cell(report(), "agent1", "8883 direct")["address_notes"] == []  # one address: nothing to add


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"unreachable": True, "msg": "ssh: timed out"}, "host unreachable: ssh: timed out"),
        ({"unreachable": True}, "host unreachable"),
        ({"failed": True, "msg": "MODULE FAILURE"}, "probe failed: MODULE FAILURE"),
        ({"failed": True}, "probe failed without a message"),
        (
            {"skipped": True, "skip_reason": "Conditional result was False"},
            "probe skipped: Conditional result was False",
        ),
        ({"changed": False, "skipped": True}, "probe skipped"),
        (None, "no probe result"),
        ({}, "no probe result"),
        ("garbage", "the probe result is not a mapping (str)"),
        ({"verdict": "maybe"}, "unknown verdict 'maybe'"),
        ({"paths": []}, "the probe result has no verdict"),
    ],
)
def test_not_probed(raw, reason):
    model = report({"h": raw, "ok": load("healthy")})
    r = row(model, "h")
    assert r["state"] == "not_probed"
    assert r["verdict"] is None
    assert r["verdict_reason"] == reason
    assert [c["state"] for c in r["cells"]] == ["not_probed", "not_probed"]
    assert model["summary"]["not_probed"] == 1


def test_failed_task_that_still_carries_a_probe_result_counts_as_probed():
    raw = load("unreachable")
    raw.update(failed=True, msg="EPNS is unreachable")  # fail_on=unreachable
    assert row(report({"h": raw}), "h")["state"] == "unreachable"


def test_failed_path_without_failure_object_takes_the_attempts_failure():
    raw = load("unreachable")
    raw["paths"][0]["failure"] = None
    c = cell(report({"h": raw}), "h", "8883 direct")
    assert (c["state"], c["failure_class"]) == ("failed", "tcp_timeout")
    raw["paths"][0]["attempts"] = []
    c = cell(report({"h": raw}), "h", "8883 direct")
    assert (c["state"], c["failure_class"]) == ("failed", "unknown")


def test_hosts_option_adds_missing_hosts_as_not_probed():
    phases = normalize_phases(results={"agent1": load("healthy")}, hosts=["agent1", "agent2"])
    model = build_report(phases)
    assert row(model, "agent2")["verdict_reason"] == "no probe result"
    assert row(model, "agent1")["state"] == "reachable"


def test_phases_before_and_after():
    before = fleet()
    after = fleet()
    after["agent3"] = load("healthy")
    after["agent6"] = load("healthy")
    after["agent11"] = load("healthy")
    phases = normalize_phases(
        phases=[{"phase": "before firewall", "results": before}, {"phase": "after", "results": after}]
    )
    model = build_report(phases)
    assert [p["title"] for p in model["phases"]] == ["before firewall", "after"]
    assert [p["anchor"] for p in model["phases"]] == ["phase-1", "phase-2"]
    assert model["summary"] == model["phases"][1]["totals"]
    comparison = {r["host"]: r for r in model["comparison"]["rows"]}
    assert comparison["agent3"]["states"] == ["unreachable", "reachable"]
    assert comparison["agent3"]["changed"] is True
    assert comparison["agent3"]["cell_changes"] == [
        {"column": "8883 direct", "from": "failed", "to": "ok"},
        {"column": "443 direct", "from": "failed", "to": "ok"},
    ]
    assert comparison["agent11"]["states"] == [None, "reachable"]
    assert comparison["agent11"]["labels"] == ["absent", "reachable"]
    assert comparison["agent1"]["changed"] is False
    assert model["comparison"]["changed"] == 3
    lines = dict(line.split(": ", 1) for line in model["summary_lines"])
    assert lines["agent3"] == "unreachable -> reachable - 8883 direct works"
    assert lines["agent11"].startswith("absent -> reachable")


def test_repeated_phase_labels_are_numbered():
    phases = normalize_phases(phases=[{"results": {"a": None}}, {"results": {"a": None}}])
    model = build_report(phases)
    assert [p["title"] for p in model["phases"]] == ["1. Results", "2. Results"]


def test_single_run_has_no_comparison():
    assert report()["comparison"] is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of results and phases"),
        ({"results": {}, "phases": []}, "exactly one of results and phases"),
        ({"results": ["a"]}, "results must be a mapping"),
        ({"phases": []}, "non-empty list"),
        ({"phases": [{"phase": "x"}]}, "phases[0] must be a mapping with a results key"),
        ({"phases": [{"results": {}, "extra": 1}]}, "phases[0] has unknown keys: extra"),
        ({"phases": [{"results": "x"}]}, "phases[0].results must be a mapping"),
    ],
)
def test_input_errors(kwargs, message):
    with pytest.raises(ReportInputError) as exc:
        normalize_phases(**kwargs)
    assert message in str(exc.value)


def test_sections():
    sections = [
        {"title": "Firewall", "text": "nftables table inet epns", "items": ["allow 8883", None]},
        {"title": "Table", "table": {"columns": ["host", "rule"], "rows": [["a", "b"], [1, None]]}},
    ]
    model = report(sections=sections)
    assert model["sections"][0] == {
        "title": "Firewall",
        "anchor": "section-1",
        "text": "nftables table inet epns",
        "items": ["allow 8883", ""],
        "table": None,
    }
    assert model["sections"][1]["table"] == {"columns": ["host", "rule"], "rows": [["a", "b"], ["1", ""]]}


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ([{"text": "x"}], "sections[0] must be a mapping with a title"),
        ([{"title": "x", "body": "y"}], "sections[0] has unknown keys: body"),
        ([{"title": "x", "items": "y"}], "sections[0].items must be a list"),
        ([{"title": "x", "table": {"columns": []}}], "sections[0].table.columns must not be empty"),
        ([{"title": "x", "table": {"columns": ["a"], "rows": [["1", "2"]]}}], "has 2 cells, the table has 1 columns"),
    ],
)
def test_section_errors(sections, message):
    with pytest.raises(ReportInputError) as exc:
        report(sections=sections)
    assert message in str(exc.value)


def test_summary_lines():
    lines = report()["summary_lines"]
    assert len(lines) == 8
    assert lines[0] == "agent1: reachable - 8883 direct works"
    assert lines[1] == (
        f"agent2: degraded - only 443 via {PROXY} works (failing: 8883 direct: tcp_timeout at tcp; "
        f"443 direct: tcp_timeout at tcp; 8883 via {PROXY}: proxy_refused at proxy_connect)"
    )
    assert (
        lines[5] == "agent6: not probed - host unreachable: Failed to connect to the host via ssh: Connection timed out"
    )


def test_summary_lines_are_terminal_safe():
    model = report({"evil\x1b[2J\nhost": {"unreachable": True, "msg": "bad\rthing\x07"}})
    assert model["summary_lines"] == ["evil\\x1b[2J\\x0ahost: not probed - host unreachable: bad\\x0dthing\\x07"]


def test_credentials_in_proxy_urls_are_redacted():
    raw = load("degraded")
    for path in raw["paths"]:
        if path["proxy"]:
            path["proxy"] = "http://user:s3cret@proxy.lab:3128"
            path["id"] = path["id"].replace(PROXY, "http://user:s3cret@proxy.lab:3128")
    model = report({"h": raw})
    assert "s3cret" not in json.dumps(model)
    assert model["phases"][0]["columns"][2]["id"] == "8883 via http://***@proxy.lab:3128"


def test_model_is_json_serialisable_and_deterministic():
    results = fleet()
    a = report(results, title="T", generated_at="2025-01-01T00:00:00Z")
    items = list(copy.deepcopy(results).items())
    random.Random(4).shuffle(items)
    b = report(dict(items), title="T", generated_at="2025-01-01T00:00:00Z")
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert json.loads(json.dumps(a)) == a


def test_input_is_not_modified():
    results = fleet()
    before = copy.deepcopy(results)
    report(results)
    assert results == before


def test_tls_names_in_other_shapes():
    raw = load("healthy")
    attempt = raw["paths"][0]["attempts"][0]
    attempt["tls"]["issuer"] = {"CN": "Corp Inspect CA", "O": "Corp"}
    assert cell(report({"h": raw}), "h", "8883 direct")["tls_issuer"] == "CN=Corp Inspect CA, O=Corp"
    attempt["tls"]["issuer"] = [["CN", "X"], "odd"]
    assert cell(report({"h": raw}), "h", "8883 direct")["tls_issuer"] == "CN=X, odd"
