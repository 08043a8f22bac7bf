"""playbooks/site.yml: probe, open the firewall, probe again; the report shows both runs."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _ansible import REPO, run_playbook
from _firewall import clean_host, nft_default_deny

pytestmark = pytest.mark.lab


def test_site_turns_a_default_deny_host_reachable_and_reports_before_and_after(lab: Any, tmp_path: Path) -> None:
    agent = lab.agents[0]
    clean_host(lab, agent)
    nft_default_deny(lab, agent)
    try:
        done = run_playbook(lab, REPO / "playbooks" / "site.yml", extra_vars={
            "epns_targets": agent, "epns_verify_report_dir": str(tmp_path), "epns_firewall_refresh": False,
            # the proxy step has its own tests; here the lab's proxies stay as they are
            "epns_proxy_targets": "!all"})
        assert done.returncode == 0, done.stdout[-4000:]
        assert f"{agent}: unreachable -> reachable" in done.stdout
        report = json.loads((tmp_path / "epns-report.json").read_text())["report"]
        assert [p["phase"] for p in report["phases"]] == ["before the changes", "after the changes"]
        before, after = (p["rows"][0] for p in report["phases"])
        assert (before["state"], after["state"]) == ("unreachable", "reachable")
        assert before["cells"][0]["failure_class"] == "tcp_timeout"
    finally:
        clean_host(lab, agent)
