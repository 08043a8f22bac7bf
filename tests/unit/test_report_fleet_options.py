"""The action's fleet options: hosts_info, eset_inventory, stale_after and published_addresses reach the model."""
from __future__ import annotations

from pathlib import Path

import pytest
from _report_fixtures import load
from ansible_collections.protectnet.epns.plugins.action import epns_report as action
from ansible_collections.protectnet.epns.plugins.plugin_utils._report._normalise import ReportInputError


def args(**given) -> dict:
    base = {name: None for name in action.ARGUMENT_SPEC}
    base.update(stale_after="1d", title="Fleet", generated_at="2026-01-10T12:00:00Z",
                results={"a": load("ipv6_fails")})
    base.update(given)
    return base


def test_the_default_published_list_is_checked_and_named():
    _inputs, model = action._build_model(args())
    assert model["published"]["path"].endswith("epns_addresses.yml") and model["published"]["date"]
    # the fixture resolves to lab addresses (198.18.1.10, 2001:db8:...), which ESET never publishes
    assert [(w["kind"], w["host"]) for w in model["warnings"]] == [("outside_published", "a")] * 2


def test_a_published_file_of_ones_own_decides_the_warnings(tmp_path: Path):
    own = tmp_path / "mine.yml"
    own.write_text("date: 2026-01-01\nsource: our firewall team\nnetworks: [198.18.1.0/24]\n")
    _inputs, model = action._build_model(args(published_addresses=str(own)))
    assert model["published"]["path"] == str(own)
    assert [w["address"] for w in model["warnings"]] == ["2001:db8:0:1::10"]


def test_a_broken_published_file_is_an_input_error_naming_it(tmp_path: Path):
    broken = tmp_path / "broken.yml"
    broken.write_text("networks: nope\n")
    with pytest.raises(ReportInputError, match=r"published_addresses: .*broken\.yml"):
        action._build_model(args(published_addresses=str(broken)))


def test_hosts_info_and_the_inventory_summary_make_the_coverage():
    _inputs, model = action._build_model(args(
        hosts_info={"a": {"eset_uuid": "u1", "eset_last_sync": "2026-01-01T00:00:00Z", "in_play": True}},
        eset_inventory={"left_out": []}, stale_after="2d"))
    assert model["coverage"]["stale_after_seconds"] == 2 * 86400
    assert [s["host"] for s in model["coverage"]["stale"]] == ["a"]
    with pytest.raises(ReportInputError, match=r"hosts_info\[a\] must be a mapping"):
        action._build_model(args(hosts_info={"a": "x"}))
