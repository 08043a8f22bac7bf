"""Evidence beside a verdict, from what the host itself says without a probe: the ESET agent's own connection
(epns_agent_connection) and, with the monitor, when EPNS last worked from there (epns_monitor_info); shown in the
HTML and Markdown reports, never changing a verdict."""
from __future__ import annotations

import typing as t

import pytest
from _report_fixtures import load
from ansible_collections.protectnet.epns.plugins.plugin_utils._report._model import FleetContext, build_report
from ansible_collections.protectnet.epns.plugins.plugin_utils._report._normalise import normalize_phases
from ansible_collections.protectnet.epns.plugins.plugin_utils._report._render import render


def agent(state: str, port: t.Optional[int], via: t.Optional[str], message: str) -> dict:
    return {"summary": {"state": state, "port": port, "via": via, "up_seconds": 60}, "message": message}


MONITOR = {"installed": True, "last_working": 1764748800.0, "last_run": 1764749700.0, "last_verdict": "degraded"}
CASES = [
    # (name, result fixture, hosts_info of the host, expected evidence lines)
    ("agent on 8883 directly, host reachable: nothing to say", "healthy",
     {"agent_connection": agent("connected", 8883, "direct", "the agent itself is on 8883")}, []),
    ("agent through its proxy: said even when reachable", "healthy",
     {"agent_connection": agent("connected", None, "proxy", "the agent itself is connected via the proxy")},
     ["ESET agent: the agent itself is connected via the proxy"]),
    ("agent only on 443", "healthy",
     {"agent_connection": agent("connected", 443, "direct", "the agent itself is on 443 directly")},
     ["ESET agent: the agent itself is on 443 directly"]),
    ("unreachable host: the agent's plain connection is worth saying", "unreachable",
     {"agent_connection": agent("connected", 8883, "direct", "the agent itself is on 8883")},
     ["ESET agent: the agent itself is on 8883"]),
    ("cannot see", "healthy", {"agent_connection": agent("cannot_see", None, None, "")}, ["ESET agent: cannot see"]),
    ("skipped check: nothing", "healthy", {"agent_connection": {"skipped": True}}, []),
    ("monitor: last seen working", "unreachable", {"monitor": MONITOR},
     ["monitor: last seen working 2025-12-03T08:00:00Z (last run 2025-12-03T08:15:00Z: degraded)"]),
    ("monitor that never saw EPNS work", "unreachable", {"monitor": dict(MONITOR, last_working=None)},
     ["monitor: last seen working never (last run 2025-12-03T08:15:00Z: degraded)"]),
    ("no monitor on the host", "healthy", {"monitor": {"installed": False}}, []),
]


@pytest.mark.parametrize("name, fixture, info, expected", CASES, ids=[c[0] for c in CASES])
def test_evidence_lines(name: str, fixture: str, info: dict, expected: t.List[str]) -> None:
    del name
    inputs = normalize_phases(results={"a": load(fixture)})
    report = build_report(inputs, fleet=FleetContext(hosts_info={"a": info}))
    row = report["phases"][-1]["rows"][0]
    assert row["evidence"] == expected
    assert row["state"] == build_report(inputs)["phases"][-1]["rows"][0]["state"]  # never changes a verdict
    for fmt in ("html", "markdown"):
        out = render(fmt, report, inputs)
        for line in expected:
            assert (line if fmt == "html" else line.replace("_", "\\_")) in out, fmt
