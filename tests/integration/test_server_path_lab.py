"""The probe's server path against the lab's ESET PROTECT server stand-in (pn-server, TLS on 2222, signed by the
lab's ESET PROTECT CA): reachable directly; untrusted with the wrong CA; refused with the port blocked on the way;
through the managed squid and Apache refused until proxy_connect_ports opens CONNECT to the server's agent port (and
to nothing else); EPNS's verdict untouched throughout."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Dict

import pytest
from _ansible import PLAYBOOKS, probe, run_playbook

pytestmark = pytest.mark.lab

AGENT = "pn-agent1"
LAB_NETS = ["198.18.0.0/15", "2001:db8::/32"]
MANAGED = {"squid": "pn-squid", "apache": "pn-apache"}


def server_args(lab: Any, **extra: Any) -> Dict[str, Any]:
    args = {"eset_server": lab.eset_server, "eset_server_ca_path": str(lab.eset_server_ca_path),
            "timeout": 10, "connect_timeout": 3}
    args.update(extra)
    return args


def server_path(result: Dict[str, Any], path_id: str) -> Dict[str, Any]:
    return next(p for p in result["server_paths"] if p["id"] == path_id)


def configure(lab: Any, host: str, args: Dict[str, Any]) -> Dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pn-proxy-") as work:
        result_file = Path(work) / "results.json"
        done = run_playbook(lab, PLAYBOOKS / "proxy_connect.yml", extra_vars={
            "proxy_targets": host, "proxy_args": args, "result_file": str(result_file)})
        assert result_file.exists(), f"rc={done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        result: Dict[str, Any] = json.loads(result_file.read_text())[host]
        return result


def test_lab_inventory_names_the_server_and_its_ca(lab: Any) -> None:
    text = lab.inventory.read_text()
    assert f"lab_eset_server={lab.eset_server}" in text and "lab_eset_server_port=2222" in text
    assert f"lab_eset_server_ca_path={lab.eset_server_ca_path}" in text
    assert "ESET PROTECT Certification Authority" in lab.run(
        AGENT, ["openssl", "x509", "-noout", "-subject", "-in", str(lab.eset_server_ca_path)]).stdout


def test_direct_server_path_is_reachable_beside_epns(lab: Any) -> None:
    result = probe(lab, {AGENT: server_args(lab)})[AGENT]
    path = server_path(result, "2222 server direct")
    assert path["ok"] is True, path
    assert [s["name"] for s in path["attempts"][0]["stages"]] == ["tcp", "tls"]
    assert path["attempts"][0]["tls"]["issuer"].startswith("CN=ESET PROTECT Certification Authority")
    assert result["server_verdict"] == "reachable" and result["verdict"] == "reachable"


def test_wrong_ca_is_untrusted(lab: Any) -> None:
    result = probe(lab, {AGENT: server_args(lab, eset_server_ca_path=str(lab.ca_path))})[AGENT]
    failure = server_path(result, "2222 server direct")["failure"]
    assert failure["class"] == "tls_untrusted" and failure["stage"] == "tls"
    assert result["server_verdict"] == "unreachable" and result["verdict"] == "reachable"


@pytest.mark.parametrize(("action", "cls"), [("reject", "tcp_refused"), ("drop", "tcp_timeout")])
def test_blocked_agent_port(lab: Any, action: str, cls: str) -> None:
    lab.fault(AGENT, "block", port=2222, to="server", action=action)
    result = probe(lab, {AGENT: server_args(lab, connect_timeout=1, address_family="ipv4")})[AGENT]
    failure = server_path(result, "2222 server direct")["failure"]
    assert failure["class"] == cls and failure["stage"] == "tcp", failure
    assert result["verdict"] == "reachable"  # EPNS is not the server


@pytest.mark.parametrize("kind", list(MANAGED))
def test_managed_proxy_carries_the_server_path_once_opened(lab: Any, kind: str) -> None:
    host, url = MANAGED[kind], f"http://{kind}.lab:3128"
    path_id = f"2222 server via {url}"
    before = probe(lab, {AGENT: server_args(lab, direct=False, proxies=[url])})[AGENT]
    assert server_path(before, path_id)["failure"]["class"] == "proxy_refused"
    try:
        opened = configure(lab, host, {"proxy": kind, "allowed_sources": LAB_NETS, "eset_server": lab.eset_server})
        assert opened.get("failed") is not True and opened["changed"] is True, opened.get("msg")
        assert opened["eset_server_denied_by"] == []
        after = probe(lab, {AGENT: server_args(lab, direct=False, proxies=[url])})[AGENT]
        assert server_path(after, path_id)["ok"] is True, server_path(after, path_id)
        assert after["server_verdict"] == "reachable"
        # Nothing more: the agent port of another host stays closed through the proxy.
        other = probe(lab, {AGENT: server_args(lab, direct=False, proxies=[url], eset_server="hostile.lab",
                                               eset_server_ca_path=str(lab.eset_server_ca_path))})[AGENT]
        assert server_path(other, path_id)["failure"]["class"] == "proxy_refused"
    finally:
        configure(lab, host, {"proxy": kind, "state": "absent"})
