"""Report models for the view tests (HTML, Markdown, browser): built by the real model code, synthetic fleets from
tests/bench/_synthetic.py.

`with_model_keys` fills the schema-2 keys (causes, egress, coverage, inferred, row egress) the way
/work/notes/contract16.md shapes them, only when the model in this tree does not make them itself: the views are
tested on those shapes either way, and on the real ones once the model builds them.
"""
from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from ansible_collections.protectnet.epns.plugins.plugin_utils._report import _render as rr
from ansible_collections.protectnet.epns.plugins.plugin_utils._report._model import build_report
from ansible_collections.protectnet.epns.plugins.plugin_utils._report._normalise import normalize_phases

BENCH = Path(__file__).resolve().parent.parent / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import _synthetic  # noqa: E402

Model = Dict[str, Any]


def _causes(phase: Model) -> list:
    causes: Dict[Tuple[Any, ...], Model] = {}
    for row in phase["rows"]:
        for problem in row["problems"]:
            key = (problem["failure_class"], problem["stage"], problem["column"])
            cause = causes.get(key)
            if cause is None:
                cause = causes[key] = {
                    "id": f"cause-{len(causes) + 1}", "failure_class": key[0], "stage": key[1], "column": key[2],
                    "role": "server" if problem["server"] else "epns",
                    "title": f"{key[2]}: {key[0]} at {key[1]}", "explanation": f"{key[0]} seen at {key[1]}",
                    "fix": f"fix {key[0]}", "hosts": 0, "would_reach": 0, "host_names": [],
                }
            cause["hosts"] += 1
            cause["host_names"].append(row["host"])
            if row["state"] != "reachable" and len(row["problems"]) == 1:
                cause["would_reach"] += 1
    return sorted(causes.values(), key=lambda c: -c["hosts"])


def _egress(phase: Model, hosts_info: Dict[str, Model], inferred: list) -> list:
    groups: Dict[str, Model] = {}

    def group(info: Model) -> Model:
        public = info.get("eset_public_ip") or "unknown"
        if public not in groups:
            groups[public] = {
                "id": f"egress-{len(groups) + 1}", "label": f"{public} ({info.get('eset_group_path') or 'no group'})",
                "public_ip": info.get("eset_public_ip"), "source": info.get("eset_local_ip"), "gateway": None,
                "proxy": None, "eset_group": info.get("eset_group_path"), "hosts": 0,
                "states": {"reachable": 0, "degraded": 0, "unreachable": 0, "not_probed": 0, "inferred": 0},
                "cause_ids": [], "host_names": [], "inferred_names": [],
            }
        return groups[public]

    for row in phase["rows"]:
        found = group(hosts_info.get(row["host"], {}))
        found["hosts"] += 1
        found["states"][row["state"]] += 1
        found["host_names"].append(row["host"])
        row["egress"] = found["id"]
    for line in inferred:
        found = group(hosts_info[line["host"]])
        found["states"]["inferred"] += 1
        found["inferred_names"].append(line["host"])
        line["egress"] = found["id"]
    return sorted(groups.values(), key=lambda g: -g["hosts"])


def with_model_keys(model: Model, hosts_info: Optional[Dict[str, Model]] = None) -> Model:
    """The model with the schema-2 keys of contract16 (see the module docstring)."""
    if "causes" in model:
        return model
    hosts_info = hosts_info or {}
    phase = model["phases"][-1]
    probed = {row["host"] for row in phase["rows"]}
    inferred = [
        {"host": host, "display_name": info.get("eset_display_name"), "os_family": info.get("eset_os_family"),
         "basis": {"public_ip": info.get("eset_public_ip"), "local_prefix": None, "proxy": None},
         "from_host": None, "egress": None, "neighbour_state": None, "text": "unknown"}
        for host, info in hosts_info.items() if host not in probed
    ]
    model["causes"] = _causes(phase)
    model["egress"] = _egress(phase, hosts_info, inferred) if hosts_info else []
    model["inferred"] = inferred
    model["coverage"] = {
        "stale_after_seconds": 86400,
        "not_probed": [{"host": i["host"], "display_name": i["display_name"], "reason": "other_os",
                        "text": f"{i['os_family']}: Ansible does not probe it"} for i in inferred],
        "unknown_to_eset": sorted(h for h in probed if not hosts_info.get(h, {}).get("eset_uuid")),
        "stale": [],
    } if hosts_info else None
    model["warnings"] = []
    for row in phase["rows"]:
        row.setdefault("egress", None)
        row.setdefault("agent_connection", (hosts_info.get(row["host"], {}).get("agent_connection") or {}).get(
            "summary"))
    return model


def build(results: Dict[str, Any], hosts_info: Optional[Dict[str, Model]] = None, **kwargs: Any) -> tuple:
    """(model, inputs) through the real model code; hosts_info goes to it when it takes that option."""
    inputs = normalize_phases(results=results)
    if hosts_info is not None and "hosts_info" in inspect.signature(build_report).parameters:
        kwargs["hosts_info"] = hosts_info
    return with_model_keys(build_report(inputs, **kwargs), hosts_info), inputs


def synthetic(count: int) -> tuple:
    """(model, inputs, fleet) for `count` synthetic probed hosts and their sites' non-probed devices."""
    made = _synthetic.fleet(count)
    model, inputs = build(made.results, made.hosts_info, title=f"{count} synthetic hosts",
                          generated_at="2025-06-01T12:00:00Z")
    return model, inputs, made


def render(fmt: str, model: Model, inputs: Any) -> str:
    return rr.render(fmt, model, inputs)
