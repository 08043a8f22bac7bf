"""The HTML report in a real browser (headless Debian chromium, tests/integration/_browser.py), opened from a file:
filters and sorting change the rows the browser lays out, details open on demand, hostile strings from certificates
and host names run nothing, the page reads without JavaScript, and 10,000 synthetic hosts open and filter.
Screenshots go to .build/test-artifacts/report/. No lab needed."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from _browser import chromium, open_report, screenshot, visible_hosts

UNIT = Path(__file__).resolve().parent.parent / "unit"
if str(UNIT) not in sys.path:
    sys.path.insert(0, str(UNIT))

from _report_fixtures import fleet as recorded_fleet  # noqa: E402
from _report_fixtures import load  # noqa: E402
from _report_view_fixtures import build, render, synthetic  # noqa: E402

pytestmark = pytest.mark.browser

PROXY_PATH = "8883 via http://proxy.lab:3128"
PAYLOADS = (
    '<script>window.__pwned=1;document.title="pwned"</script>',
    '"><img src=x onerror="window.__pwned=2;document.title=\'pwned\'">',
    "javascript:window.__pwned=3",
    "<svg onload=window.__pwned=4>",
)
HOSTILE_HOST = PAYLOADS[0] + "-agent"


def _demo_results() -> dict:
    results = recorded_fleet(agent6={"unreachable": True, "msg": "Failed to connect to the host via ssh"})
    hostile = load("degraded")
    for path in hostile["paths"]:
        for attempt in path["attempts"]:
            if attempt.get("tls"):
                attempt["tls"].update(subject=PAYLOADS[1] + PAYLOADS[2], issuer=PAYLOADS[3] + PAYLOADS[0])
        if path["failure"]:
            path["failure"]["message"] = PAYLOADS[1]
    results[HOSTILE_HOST] = hostile
    results[PAYLOADS[1]] = load("unreachable")
    return results


def _hosts_info(results: dict) -> dict:
    info = {host: {"eset_uuid": f"uuid-{i}", "eset_display_name": host, "eset_group_path": "All/HQ",
                   "eset_public_ip": "203.0.113.5", "eset_local_ip": f"192.168.1.{20 + i}", "eset_os_family": "linux",
                   "in_play": True} for i, host in enumerate(results)}
    info["win-01"] = {"eset_uuid": "uuid-w", "eset_display_name": PAYLOADS[1], "eset_group_path": "All/HQ",
                      "eset_public_ip": "203.0.113.5", "eset_os_family": "windows", "in_play": False}
    return info


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple:
    results = _demo_results()
    model, inputs = build(results, _hosts_info(results), title="Demo fleet", generated_at="2025-06-01T12:00:00Z")
    target = tmp_path_factory.mktemp("report") / "report.html"
    target.write_text(render("html", model, inputs), encoding="utf-8")
    return target, model


def _hosts(model: dict, state: str = "") -> set:
    return {r["host"] for r in model["phases"][0]["rows"] if not state or r["state"] == state}


def _choose(driver, name: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("name", name)).select_by_value(value)


def _type(driver, text: str) -> None:
    """As a person types: the page filters on each input event (selenium's clear() sends none)."""
    from selenium.webdriver.common.keys import Keys

    field = driver.find_element("name", "text")
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.BACKSPACE)
    if text:
        field.send_keys(text)


def test_filters_and_sorting_change_the_visible_rows(demo):
    path, model = demo
    with chromium() as driver:
        open_report(driver, path)
        assert driver.find_element("id", "filters").is_displayed()  # the script ran under the page's CSP
        assert set(visible_hosts(driver)) == _hosts(model)
        _choose(driver, "verdict", "unreachable")
        assert set(visible_hosts(driver)) == _hosts(model, "unreachable")
        assert driver.find_element("id", "shown").text == f"{len(_hosts(model, 'unreachable'))} rows shown"
        _choose(driver, "verdict", "failing")
        assert set(visible_hosts(driver)) == _hosts(model) - _hosts(model, "reachable")
        _choose(driver, "verdict", "")
        _choose(driver, "class", "dns_no_answer")
        assert visible_hosts(driver) == ["agent4"]
        _choose(driver, "class", "")
        _choose(driver, "path", PROXY_PATH)
        assert set(visible_hosts(driver)) == {"agent2", HOSTILE_HOST}  # the hostile host is a copy of agent2
        _choose(driver, "path", "")
        _type(driver, "agent1")
        assert sorted(visible_hosts(driver)) == ["agent1", "agent10"]
        screenshot(driver, "demo-filtered")
        _type(driver, "")
        header = driver.find_element("css selector", 'table.matrix th[data-col="host"]')
        before = visible_hosts(driver)
        header.click()
        ascending = visible_hosts(driver)
        assert header.get_attribute("aria-sort") == "ascending" and ascending != before
        assert ascending.index("agent2") < ascending.index("agent10")  # numeric-aware order
        header.click()
        assert visible_hosts(driver) == ascending[::-1]
        driver.find_element("css selector", 'table.matrix th[data-col="verdict"]').click()
        assert visible_hosts(driver) == before  # verdict order is the page's own: failing hosts first


def test_details_open_on_demand(demo):
    path, _model = demo
    with chromium() as driver:
        open_report(driver, path)
        cell = driver.find_element("css selector", "table.matrix td.tone-failed")
        details, message = cell.find_element("tag name", "details"), cell.find_element("css selector", ".msg")
        assert details.get_attribute("open") is None and not message.is_displayed()
        cell.find_element("tag name", "summary").click()
        assert details.get_attribute("open") is not None and message.is_displayed()
        screenshot(driver, "demo-details")


def test_hostile_strings_from_certificates_and_host_names_are_inert(demo):
    path, _model = demo
    with chromium() as driver:
        open_report(driver, path)
        driver.execute_script("document.querySelectorAll('details').forEach(function (d) { d.open = true; });")
        time.sleep(0.5)
        assert driver.execute_script("return typeof window.__pwned") == "undefined"
        assert driver.title == "Demo fleet"
        assert driver.execute_script("return document.querySelectorAll('img, svg, iframe').length") == 0
        assert driver.execute_script("return document.scripts.length") == 1
        text = driver.find_element("tag name", "body").text
        shown_literally = (HOSTILE_HOST, PAYLOADS[1], "TLS issuer: " + PAYLOADS[3] + PAYLOADS[0])
        assert [p for p in shown_literally if p not in text] == []
        assert HOSTILE_HOST in visible_hosts(driver)
        screenshot(driver, "demo-hostile")


def test_without_javascript_causes_networks_and_failing_hosts_show(demo):
    path, model = demo
    with chromium(javascript=False) as driver:
        open_report(driver, path)
        assert not driver.find_element("id", "filters").is_displayed()
        for section in ("causes", "egress", "coverage"):
            assert driver.find_element("id", section).is_displayed()
        shown = visible_hosts(driver)
        assert set(shown) == _hosts(model)
        failing = _hosts(model) - _hosts(model, "reachable")
        assert set(shown[: len(failing)]) == failing
        screenshot(driver, "demo-no-javascript")


def test_docs_screenshot(tmp_path):
    """The picture in docs/results.md (copied to docs/report-screenshot.png by hand when the page changes)."""
    results = recorded_fleet(agent6={"unreachable": True, "msg": "Failed to connect to the host via ssh"})
    model, inputs = build(results, _hosts_info(results), title="EPNS reachability", generated_at="2025-06-01T12:00Z")
    model["inferred"][0]["display_name"] = "WIN-01"
    path = tmp_path / "report.html"
    path.write_text(render("html", model, inputs), encoding="utf-8")
    with chromium(width=1100, height=800) as driver:
        open_report(driver, path)
        driver.find_element("css selector", "table.matrix td.tone-failed summary").click()
        driver.execute_script("document.getElementById('hosts').scrollIntoView();")
        assert screenshot(driver, "report-screenshot").stat().st_size > 10_000


def test_10000_synthetic_hosts_open_and_filter(tmp_path):
    model, inputs, made = synthetic(10000)
    target = tmp_path / "report.html"
    target.write_text(render("html", model, inputs), encoding="utf-8")
    with chromium() as driver:
        started = time.monotonic()
        open_report(driver, target)
        loaded = time.monotonic() - started
        assert driver.find_element("id", "filters").is_displayed()
        assert len(visible_hosts(driver)) == 10000
        _choose(driver, "verdict", "unreachable")
        assert set(visible_hosts(driver)) == _hosts(model, "unreachable")
        _choose(driver, "verdict", "")
        site = made.sites[42]["id"]
        _type(driver, site + "-")
        assert set(visible_hosts(driver)) == {h for h in made.results if h.startswith(site + "-")}
        screenshot(driver, "synthetic-10000-filtered")
        assert loaded < 60, f"the 10,000-host report took {loaded:.1f} s to open"
