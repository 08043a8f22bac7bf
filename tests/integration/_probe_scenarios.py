"""Probe scenarios run against the lab: one fault set and probe arguments per agent, read through a real Ansible run.

Scenarios run in batches, one per agent at a time, so a whole batch costs one ansible-playbook run. Test files
declare their scenarios and call `run_scenarios` from a module-scoped fixture; `check_scenario` holds the assertions
every scenario shares.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from _ansible import probe


@dataclass
class Scenario:
    name: str
    faults: Sequence[Tuple[str, Dict[str, Any]]] = ()
    args: Dict[str, Any] = field(default_factory=dict)
    verdict: Optional[str] = None
    # path id -> expected failure class, or "ok" / "proven_by_auth"
    paths: Dict[str, str] = field(default_factory=dict)
    check: Optional[Callable[[Dict[str, Any]], None]] = None
    oracle: bool = False
    # Lab set-up beyond the fault switches (e.g. a trust anchor added on the agent): called with (lab, agent)
    # after the faults are on; the lab's reset between batches must undo it.
    prepare: Optional[Callable[[Any, str], None]] = None


def path_of(result: Dict[str, Any], path_id: str) -> Dict[str, Any]:
    for candidate in result["paths"]:
        if candidate["id"] == path_id:
            return candidate
    raise AssertionError(f"no path {path_id!r} in {[p['id'] for p in result['paths']]}")


def outcome(path: Dict[str, Any]) -> str:
    if path["ok"]:
        return "proven_by_auth" if path["proven_by_auth"] else "ok"
    return str(path["failure"]["class"])


Outcomes = Dict[str, Tuple[Dict[str, Any], Optional[Dict[int, Any]]]]


def run_scenarios(lab: Any, scenarios: Sequence[Scenario],
                  oracle: Optional[Callable[[Any, str, int], Any]] = None) -> Outcomes:
    """Run every scenario once, len(lab.agents) at a time; the tests only read the results."""
    collected: Outcomes = {}
    size = len(lab.agents)
    for start in range(0, len(scenarios), size):
        batch = scenarios[start:start + size]
        lab.reset()
        assignment = dict(zip(lab.agents, batch))
        for agent, scenario in assignment.items():
            for kind, options in scenario.faults:
                lab.fault(agent, kind, **options)
            if scenario.prepare:
                scenario.prepare(lab, agent)
        results = probe(lab, {agent: scenario.args for agent, scenario in assignment.items()})
        for agent, scenario in assignment.items():
            oracles = ({port: oracle(lab, agent, port) for port in (8883, 443)}
                       if scenario.oracle and oracle else None)
            collected[scenario.name] = (results[agent], oracles)
    lab.reset()
    return collected


def check_scenario(outcomes: Outcomes, scenario: Scenario) -> None:
    result, _ = outcomes[scenario.name]
    assert "failed" not in result or not result["failed"], result.get("msg")
    assert result["changed"] is False
    if scenario.verdict:
        assert result["verdict"] == scenario.verdict, result["verdict_reason"]
    for path_id, expected in scenario.paths.items():
        path = path_of(result, path_id)
        assert outcome(path) == expected, path
        if expected not in ("ok",):
            failure = path["failure"]
            assert failure["message"] and failure["hint"] and failure["stage"]
            assert isinstance(failure["elapsed_ms"], int)
    if scenario.check:
        scenario.check(result)


def names(scenarios: List[Scenario]) -> List[str]:
    return [s.name for s in scenarios]
