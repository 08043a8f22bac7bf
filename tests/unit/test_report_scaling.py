"""The report stays linear in the number of hosts: no host x host or host x proxy step (issue 16).

A step that is quadratic makes 4x the hosts cost about 16x; a linear report about 4x. The time check uses this
process's CPU time (not wall time: the machine is shared) and the best of a few runs, and allows up to 8x, so load
does not make it flaky while a quadratic step still fails it. The cell count check is exact: it catches the matrix
growing with the number of proxies, the quadratic step a proxy per site used to cause.
"""
from __future__ import annotations

import json
import sys
import time
import typing as t
from pathlib import Path

import pytest
from ansible_collections.protectnet.epns.plugins.plugin_utils._report import _normalise, _text
from ansible_collections.protectnet.epns.plugins.plugin_utils._report._model import build_report
from ansible_collections.protectnet.epns.plugins.plugin_utils._report._normalise import normalize_phases
from ansible_collections.protectnet.epns.plugins.plugin_utils._report._render import (
    FORMATS,
    render,
    substance_digest,
    with_digest,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import _synthetic

SMALL, LARGE = 500, 2000
LINEAR_BOUND = 8.0  # linear: ~4x for 4x the hosts; quadratic: ~16x


def _report_cpu_seconds(results: t.Mapping[str, t.Any], runs: int = 3) -> float:
    """Best CPU time of the action's work: inputs, model, every format, digests."""
    best = float("inf")
    for _run in range(runs):
        started = time.process_time()
        inputs = normalize_phases(results=results)
        model = build_report(inputs, generated_at="2025-06-01T12:00:00Z")
        said = substance_digest(inputs, "t", None)
        for fmt in FORMATS:
            with_digest(fmt, render(fmt, model, inputs), substance_digest(fmt, None, said))
        best = min(best, time.process_time() - started)
    return best


def test_four_times_the_hosts_cost_about_four_times_the_time() -> None:
    small, large = _synthetic.fleet(SMALL).results, _synthetic.fleet(LARGE).results
    _report_cpu_seconds(small, runs=1)  # templates compiled, caches warm
    ratio = _report_cpu_seconds(large) / _report_cpu_seconds(small)
    assert ratio < LINEAR_BOUND, f"{LARGE} hosts took {ratio:.1f}x the time of {SMALL} (linear: about 4x)"


@pytest.mark.parametrize("hosts", [1000, LARGE])
def test_the_matrix_does_not_grow_with_the_number_of_proxies(hosts: int) -> None:
    made = _synthetic.fleet(hosts)
    proxies = {site["proxy"] for site in made.sites if site["proxy"]}
    assert len(proxies) > _normalise.MAX_PROXY_COLUMNS  # the fleet has a proxy per site, many of them
    phase = build_report(normalize_phases(results=made.results))["phases"][0]
    assert len(phase["columns"]) == 4  # 8883 and 443, direct and via the host's proxy
    assert sum(len(row["cells"]) for row in phase["rows"]) == 4 * hosts
    via = next(c for c in phase["columns"] if c["id"] == "8883 via proxy")
    assert via["grouped"] and via["proxy"] is None
    proxied = [row["cells"][via["index"]] for row in phase["rows"] if row["cells"][via["index"]]["proxy"]]
    assert {cell["proxy"] for cell in proxied} == proxies  # each cell names the host's own proxy


def test_a_few_proxies_keep_a_column_each() -> None:
    made = _synthetic.fleet(16 * _synthetic.HOSTS_PER_SITE)  # 16 sites, one of them behind a proxy
    proxies = sorted({site["proxy"] for site in made.sites if site["proxy"]})
    assert 0 < len(proxies) <= _normalise.MAX_PROXY_COLUMNS
    columns = build_report(normalize_phases(results=made.results))["phases"][0]["columns"]
    assert [c["id"] for c in columns if c["proxy"]] == [f"{port} via {p}" for p in proxies for port in (8883, 443)]
    assert not any(c["grouped"] for c in columns)


def test_plain_data_copies_subclasses_to_plain_types() -> None:
    class Tagged(str):
        pass

    class Mapping(dict):
        pass

    copied = _text.plain_data(Mapping(a=[Tagged("x"), (1, 2.5, None, True)]))
    assert copied == {"a": ["x", [1, 2.5, None, True]]}
    assert type(copied) is dict and type(copied["a"][0]) is str and type(copied["a"][1]) is list


def test_the_json_digest_is_added_without_parsing_and_gives_the_same_bytes() -> None:
    inputs = normalize_phases(results=_synthetic.fleet(50).results)
    content = render("json", build_report(inputs), inputs)
    fast = with_digest("json", content, "d" * 64)
    document = json.loads(content)
    document["epns-report-digest"] = "d" * 64
    assert fast == json.dumps(document, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    assert with_digest("json", '{"b": 1}\n', "d" * 64) == '{"b": 1, "epns-report-digest": "' + "d" * 64 + '"}\n'


class _SelfText(str):
    """Like ansible-core 2.16's unsafe text: str() of it returns the same subclass object."""

    def __str__(self) -> str:
        return self


def test_text_subclasses_whose_str_returns_themselves_become_plain_str():
    from ansible_collections.protectnet.epns.plugins.plugin_utils._report._render import _jsonable
    from ansible_collections.protectnet.epns.plugins.plugin_utils._report._text import plain_data

    for value in (_jsonable(_SelfText("user:secret@proxy")), plain_data(_SelfText("x")),
                  _jsonable({"k": [_SelfText("v")]})["k"][0]):
        assert type(value) is str
    assert _jsonable(_SelfText("http://user:secret@proxy:3128")) != "http://user:secret@proxy:3128"
