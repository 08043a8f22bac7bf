"""Recorded epns_probe results (tests/unit/fixtures/report) and the fleet the report tests build from them."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

FIXTURES = Path(__file__).parent / "fixtures" / "report"
RECORDED = {"agent1": "healthy", "agent2": "degraded", "agent3": "unreachable", "agent4": "dns_no_answer",
            "agent5": "ipv6_fails", "agent10": "proven_by_auth"}


def load(name: str) -> Dict[str, Any]:
    result: Dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return result


def fleet(**others: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """One host per recorded outcome, plus the given hosts (unreachable or failed task results)."""
    hosts = {host: load(name) for host, name in RECORDED.items()}
    hosts.update(others)
    return hosts
