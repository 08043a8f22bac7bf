"""Report models for the view tests (HTML, Markdown, browser): built by the real model code, synthetic fleets from
tests/bench/_synthetic.py.

The fleet parts (causes, egress, coverage, inferred lines) come from the real model with the fleet's hosts_info
and the inventory summary, as the action passes them.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, Optional

from ansible_collections.protectnet.epns.plugins.plugin_utils._report import _render as rr
from ansible_collections.protectnet.epns.plugins.plugin_utils._report._model import FleetContext, build_report
from ansible_collections.protectnet.epns.plugins.plugin_utils._report._normalise import normalize_phases

BENCH = Path(__file__).resolve().parent.parent / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import _synthetic  # noqa: E402

Model = Dict[str, Any]


def build(results: Dict[str, Any], hosts_info: Optional[Dict[str, Model]] = None,
          eset_inventory: Optional[Model] = None, **kwargs: Any) -> tuple:
    """(model, inputs) through the real model code, with the fleet context the action would give it."""
    inputs = normalize_phases(results=results)
    fleet = FleetContext(hosts_info=hosts_info, eset_inventory=eset_inventory)
    return build_report(inputs, fleet=fleet, **kwargs), inputs


def synthetic(count: int) -> tuple:
    """(model, inputs, fleet) for `count` synthetic probed hosts and their sites' non-probed devices."""
    made = _synthetic.fleet(count)
    model, inputs = build(made.results, made.hosts_info, _synthetic.eset_inventory(made),
                          title=f"{count} synthetic hosts", generated_at="2025-06-01T12:00:00Z")
    return model, inputs, made


def render(fmt: str, model: Model, inputs: Any) -> str:
    return rr.render(fmt, model, inputs)
