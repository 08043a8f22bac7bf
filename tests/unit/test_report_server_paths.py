"""The fleet report with the probe's server paths: their own columns after the EPNS ones, their own verdict, in
every format; results from a live probe against loopback peers, beside recorded results that have none."""
from __future__ import annotations

import json
import typing as t
import xml.etree.ElementTree as ET

import pytest
from _report_fixtures import load
from _server_pki import ServerPki
from ansible_collections.protectnet.epns.plugins.module_utils._probe import _engine as P
from ansible_collections.protectnet.epns.plugins.module_utils._probe._options import ProbeOptions
from ansible_collections.protectnet.epns.plugins.plugin_utils._report import _render as rr
from ansible_collections.protectnet.epns.plugins.plugin_utils._report._model import build_report
from ansible_collections.protectnet.epns.plugins.plugin_utils._report._normalise import normalize_phases


@pytest.fixture
def fleet(lo: t.Any, pki: t.Any, spki: ServerPki, servers: list, agent_port: t.Any) -> t.Dict[str, t.Any]:
    """srv-ok: EPNS reachable, server reachable; srv-down: EPNS reachable, server port closed; old: no server path."""
    broker = lo.LoopbackServer(lo.mqtt_broker(), lo.tls_server_context(pki.server_cert, pki.server_key))
    servers.append(broker)
    stand_in = agent_port(spki.named)

    def probe(server_port: int) -> t.Dict[str, t.Any]:
        return P.run_probe(ProbeOptions(
            host="127.0.0.1", server_name="epns.eset.com", ca_path=str(pki.ca), primary_port=broker.port,
            fallback_port=lo.free_port(), timeout=4.0, connect_timeout=1.0, eset_server="127.0.0.1",
            eset_server_port=server_port, eset_server_ca_path=str(spki.ca)))

    ok, down = probe(stand_in.port), probe(lo.free_port())
    # One server column for both hosts, as in a fleet where every agent replicates to the same port.
    for path in down["server_paths"]:
        path["id"] = path["id"].replace(str(path["port"]), str(stand_in.port))
    return {"srv-ok": ok, "srv-down": down, "old": load("healthy")}


def build(results: t.Dict[str, t.Any]) -> t.Tuple[t.Dict[str, t.Any], t.Any]:
    inputs = normalize_phases(results=results)
    return build_report(inputs), inputs


def test_server_columns_come_after_the_epns_columns_and_never_change_the_verdict(fleet: dict) -> None:
    model, _inputs = build(fleet)
    phase = model["phases"][0]
    server_columns = [c for c in phase["columns"] if c["server"]]
    assert len(server_columns) == 1 and phase["server_columns"] == 1
    assert phase["columns"][-1] is server_columns[0] and server_columns[0]["id"].endswith(" server direct")
    rows = {r["host"]: r for r in phase["rows"]}
    assert rows["srv-down"]["state"] == "reachable" and rows["srv-down"]["server_verdict"] == "unreachable"
    assert rows["srv-ok"]["server_verdict"] == "reachable" and rows["old"]["server_verdict"] is None
    down_cell = rows["srv-down"]["cells"][-1]
    assert down_cell["failure_class"] == "tcp_refused" and "agent port" in down_cell["hint"]
    assert rows["old"]["cells"][-1]["state"] == "not_tested"
    assert model["summary"]["reachable"] == 3


def test_summary_line_keeps_the_server_apart(fleet: dict) -> None:
    model, _inputs = build(fleet)
    line = next(x for x in model["summary_lines"] if x.startswith("srv-down:"))
    assert line.startswith("srv-down: reachable - ")
    head, server = line.split("; ESET PROTECT server ")
    assert " server " not in head and "direct: tcp_refused" in head  # the closed EPNS fallback port
    assert server.startswith("unreachable (failing: ") and "tcp_refused at tcp" in server


def test_legend_keeps_the_epns_hint_for_a_class_only_a_server_path_shows(fleet: dict) -> None:
    model, _inputs = build(fleet)
    legend = {e["class"]: e for e in model["phases"][0]["failure_classes"]}
    assert legend["tcp_refused"]["hint"].startswith("Something answers for the EPNS address")


def test_every_format_shows_the_server_paths(fleet: dict) -> None:
    model, inputs = build(fleet)
    column = next(c["id"] for c in model["phases"][0]["columns"] if c["server"])
    markdown = rr.render("markdown", model, inputs)
    assert f" {column} |" in markdown
    assert "srv-down unreachable" in markdown and "- srv-down: No path reaches the ESET PROTECT server" in markdown
    html = rr.render("html", model, inputs)
    assert f'<th data-col="{column}">{column}<small>server</small></th>' in html
    assert 'class="reason server-unreachable">ESET PROTECT server: unreachable - No path reaches' in html
    document = json.loads(rr.render("json", model, inputs))
    rows = {r["host"]: r for r in document["report"]["phases"][0]["rows"]}
    assert rows["srv-down"]["server_verdict"] == "unreachable"
    assert document["input"]["phases"][0]["results"]["srv-ok"]["server_paths"][0]["ok"] is True
    cases = ET.fromstring(rr.render("junit", model, inputs)).iter("testcase")
    server_cases = {(c.get("classname"), c.get("name")): c for c in cases if c.get("name") == column}
    assert set(server_cases) == {("srv-ok", column), ("srv-down", column)}
    failure = server_cases[("srv-down", column)].find("failure")
    assert failure is not None and failure.get("type") == "tcp_refused"
    assert server_cases[("srv-ok", column)].find("failure") is None


def test_a_fleet_without_server_paths_renders_as_before() -> None:
    model, inputs = build({"old": load("healthy")})
    assert model["phases"][0]["server_columns"] == 0
    assert "ESET PROTECT server" not in rr.render("markdown", model, inputs)
    assert "ESET PROTECT server" not in rr.render("html", model, inputs)
