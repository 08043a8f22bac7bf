"""The errno table in docs/troubleshooting.md ("Who rejected the connection"), re-measured in the lab.

Each row: a rule on the agent itself (its own output hook, in a table removed afterwards) or in the router on the
way, for one family; connect() from the agent must end as the row says, and the probe must use the row's words.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

import pytest
from _errno_matrix import Row, documented, measure, reason_of, rules

pytestmark = pytest.mark.lab

ROWS = documented()


def test_the_table_covers_every_rule_in_both_places() -> None:
    expected = {(where, rule, family) for where in ("this host", "router") for family in ("ipv4", "ipv6")
                for rule in rules(family)}
    assert {(r.where, r.rule, r.family) for r in ROWS} == expected


@pytest.fixture(scope="module")
def measured(lab: Any) -> Dict[Tuple[str, str, str], str]:
    agent = lab.agents[0]
    return {(r.where, r.rule, r.family): measure(lab, agent, r.where, r.rule, r.family) for r in ROWS}


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.where}-{r.rule}-{r.family}" for r in ROWS])
def test_connect_ends_as_documented(measured: Dict[Tuple[str, str, str], str], row: Row) -> None:
    assert measured[(row.where, row.rule, row.family)] == row.errno


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.where}-{r.rule}-{r.family}" for r in ROWS])
def test_the_probe_says_what_is_documented(row: Row) -> None:
    assert reason_of(row.errno) == row.says
    if row.errno != "EPERM":
        # the same errno comes from either place: no message may send the admin to one firewall only
        assert "local firewall" not in row.says
