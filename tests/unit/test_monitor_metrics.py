"""The runner's metrics text: escaping that Prometheus's own parser reads back, bounded labels, documented names."""
from __future__ import annotations

import pytest
from ansible_collections.protectnet.epns.plugins.module_utils._monitor import _metrics
from prometheus_client.parser import text_string_to_metric_families


def test_label_values_are_escaped_so_the_parser_reads_them_back() -> None:
    metrics = _metrics.Metrics()
    hostile = 'a"b\\c\nd} x="y'
    metrics.add("epns_path_up", {"port": "443", "via": "proxy", "proxy": hostile}, 1)
    families = list(text_string_to_metric_families(metrics.render()))
    assert [(f.name, f.type) for f in families] == [("epns_path_up", "gauge")]
    assert families[0].samples[0].labels == {"port": "443", "via": "proxy", "proxy": hostile}


def test_only_documented_metrics_can_be_written() -> None:
    with pytest.raises(ValueError, match="'epns_made_up' is not one of the documented ones"):
        _metrics.Metrics().add("epns_made_up", {}, 1)


def test_the_counter_is_typed_as_one() -> None:
    metrics = _metrics.Metrics()
    metrics.add("epns_probe_runs_skipped_total", {}, 3)
    family = next(text_string_to_metric_families(metrics.render()))
    assert (family.name, family.type, family.samples[0].value) == ("epns_probe_runs_skipped", "counter", 3.0)


@pytest.mark.parametrize("proxy, shown", [(None, ("direct", "")),
                                          ("http://bridge.example.com:3128", ("proxy", "bridge.example.com:3128")),
                                          ("http://[2001:db8::3]:3128/", ("proxy", "[2001:db8::3]:3128"))])
def test_a_path_is_labelled_by_port_via_and_the_proxy_host_and_port(proxy: str, shown: tuple) -> None:
    labels = _metrics.path_labels({"port": 8883, "proxy": proxy})
    assert (labels["port"], labels["via"], labels["proxy"]) == ("8883", *shown)


def test_remember_keeps_the_last_success_and_replaces_hold_facts_only_in_a_hold_run() -> None:
    working = {"port": 443, "proxy": None, "ok": True, "attempts": [
        {"ok": True, "stages": [{"name": "hold", "elapsed_ms": 900_000}], "failure": None}]}
    failing = dict(working, ok=False, attempts=[{"ok": False, "stages": [{"name": "hold", "elapsed_ms": 1_800}],
                                                 "failure": {"class": "idle_dropped", "stage": "hold"}}])
    known = _metrics.remember({}, {"paths": [working]}, "hold", 100.0)
    assert known["443 direct"] == {"labels": {"port": "443", "via": "direct", "proxy": ""}, "last_success": 100.0,
                                   "hold_survived": 900.0, "idle_cut": False}
    later = _metrics.remember(known, {"paths": [failing]}, "tcp_tls", 200.0)
    assert later == known
    cut = _metrics.remember(known, {"paths": [failing]}, "hold", 300.0)
    assert cut["443 direct"] == dict(known["443 direct"], hold_survived=1.8, idle_cut=True)
