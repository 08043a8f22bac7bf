"""The probe's server path (the ESET PROTECT server's agent port) against real TLS peers and proxies on 127.0.0.1."""
from __future__ import annotations

import json
import typing as t
from pathlib import Path

import pytest
from _module_run import ModuleRun
from _server_pki import ServerPki
from ansible_collections.protectnet.epns.plugins.module_utils._probe import _engine as P
from ansible_collections.protectnet.epns.plugins.module_utils._probe._options import (
    ProbeConfigError,
    ProbeOptions,
)
from ansible_collections.protectnet.epns.plugins.module_utils._probe._server import (
    names_host,
    server_line,
)
from ansible_collections.protectnet.epns.plugins.module_utils._probe._x509 import Certificate
from ansible_collections.protectnet.epns.plugins.modules import epns_probe


def probe(lo: t.Any, spki: ServerPki, port: int, **kwargs: t.Any) -> dict:
    kwargs.setdefault("eset_server", "127.0.0.1")
    kwargs.setdefault("eset_server_ca_path", str(spki.ca))
    options = dict(host="127.0.0.1", server_name="epns.eset.com", primary_port=lo.free_port(),
                   fallback_port=lo.free_port(), timeout=4.0, connect_timeout=1.0, eset_server_port=port)
    options.update(kwargs)
    return P.run_probe(ProbeOptions(**options))


def test_direct_server_path_works_beside_the_epns_paths(lo: t.Any, spki: ServerPki, agent_port: t.Any) -> None:
    server = agent_port(spki.named)
    result = probe(lo, spki, server.port)
    (path,) = result["server_paths"]
    assert path["id"] == f"{server.port} server direct" and path["role"] == "server"
    assert path["ok"] is True and path["failure"] is None
    assert [s["name"] for s in path["attempts"][0]["stages"]] == ["tcp", "tls"]
    assert path["attempts"][0]["tls"]["issuer"].startswith("CN=ESET PROTECT Certification Authority")
    assert result["server_verdict"] == "reachable" and result["eset_server"] == "127.0.0.1"
    # The EPNS verdict is the EPNS paths' alone, and they do not include the server.
    assert result["verdict"] == "unreachable" and len(result["paths"]) == 2
    assert "server" not in result["verdict_reason"]
    assert server_line(result) == ""


def test_without_eset_server_nothing_changes(lo: t.Any, pki: t.Any) -> None:
    result = P.run_probe(ProbeOptions(host="127.0.0.1", primary_port=lo.free_port(), fallback_port=lo.free_port(),
                                      ca_path=str(pki.ca), timeout=2.0, connect_timeout=0.5))
    assert result["server_paths"] == [] and result["server_verdict"] is None and result["eset_server"] is None


def test_a_certificate_for_any_host_matches_the_address(lo: t.Any, spki: ServerPki, agent_port: t.Any) -> None:
    server = agent_port(spki.any_host)
    assert probe(lo, spki, server.port)["server_paths"][0]["ok"] is True


def test_wrong_ca_is_untrusted_with_the_servers_hint(lo: t.Any, spki: ServerPki, pki: t.Any,
                                                     agent_port: t.Any) -> None:
    server = agent_port(spki.named)
    result = probe(lo, spki, server.port, eset_server_ca_path=str(pki.ca))
    failure = result["server_paths"][0]["failure"]
    assert failure["class"] == "tls_untrusted" and failure["stage"] == "tls"
    assert "ESET PROTECT Certification Authority" in failure["message"]
    assert "eset_server_ca_path" in failure["hint"] and "epns.eset.com" not in failure["hint"]
    assert result["server_verdict"] == "unreachable"
    assert server_line(result).startswith("ESET PROTECT server unreachable: No path reaches")


def test_a_name_the_certificate_does_not_cover_is_untrusted(lo: t.Any, spki: ServerPki, agent_port: t.Any) -> None:
    server = agent_port(spki.other_name)
    failure = probe(lo, spki, server.port)["server_paths"][0]["failure"]
    assert failure["class"] == "tls_untrusted"
    assert "is for protect.lab, not 127.0.0.1" in failure["message"]


def test_intercepting_device_is_untrusted(lo: t.Any, spki: ServerPki, pki: t.Any, agent_port: t.Any) -> None:
    server = agent_port((pki.rogue_cert, pki.rogue_key))
    failure = probe(lo, spki, server.port)["server_paths"][0]["failure"]
    assert failure["class"] == "tls_untrusted" and "Corp Inspection CA" in failure["message"]


def test_closed_port_is_refused(lo: t.Any, spki: ServerPki) -> None:
    result = probe(lo, spki, lo.free_port())
    failure = result["server_paths"][0]["failure"]
    assert failure["class"] == "tcp_refused" and failure["stage"] == "tcp"
    assert "agent port" in failure["hint"]


def test_server_asking_for_the_agents_certificate_counts_as_reached(lo: t.Any, spki: ServerPki, pki: t.Any,
                                                                     agent_port: t.Any) -> None:
    server = agent_port(spki.named, require_client_ca=pki.ca, max_tls12=True)
    path = probe(lo, spki, server.port)["server_paths"][0]
    assert path["ok"] is True and path["proven_by_auth"] is True
    assert path["failure"]["class"] == "tls_client_cert_required"
    assert "agent's certificate" in path["note"]


def test_through_proxies_one_refusing(lo: t.Any, spki: ServerPki, servers: list, agent_port: t.Any) -> None:
    server = agent_port(spki.named)
    good, refusing = lo.FakeProxy("ok"), lo.FakeProxy("403")
    servers.extend([good, refusing])
    good_url, bad_url = f"http://127.0.0.1:{good.port}", f"http://127.0.0.1:{refusing.port}"
    result = probe(lo, spki, server.port, proxies=[good_url, bad_url])
    by_id = {p["id"]: p for p in result["server_paths"]}
    assert list(by_id) == [f"{server.port} server direct", f"{server.port} server via {good_url}",
                           f"{server.port} server via {bad_url}"]
    assert by_id[f"{server.port} server via {good_url}"]["ok"] is True
    assert f"CONNECT 127.0.0.1:{server.port} ".encode() in good.requests[-1]
    failure = by_id[f"{server.port} server via {bad_url}"]["failure"]
    assert failure["class"] == "proxy_refused" and "eset_server" in failure["hint"]
    assert result["server_verdict"] == "partial"
    assert f"{server.port} server via {bad_url}: proxy_refused" in result["server_verdict_reason"]


def test_proxy_only_probe_has_no_direct_server_path(lo: t.Any, spki: ServerPki, servers: list,
                                                    agent_port: t.Any) -> None:
    server = agent_port(spki.named)
    proxy = lo.FakeProxy("ok")
    servers.append(proxy)
    result = probe(lo, spki, server.port, direct=False, proxies=[f"http://127.0.0.1:{proxy.port}"])
    assert [p["proxy"] for p in result["server_paths"]] == [f"http://127.0.0.1:{proxy.port}"]


def test_unresolvable_server_name(lo: t.Any, spki: ServerPki) -> None:
    failure = probe(lo, spki, 2222, eset_server="protect.invalid")["server_paths"][0]["failure"]
    assert failure["stage"] == "dns" and "protect.invalid" in failure["message"]


@pytest.mark.parametrize(("changes", "words"), [
    ({"eset_server_ca_path": None}, "eset_server: '127.0.0.1' needs eset_server_ca_path"),
    ({"eset_server": None}, "given without eset_server"),
    ({"eset_server_port": 0}, "eset_server_port: 0 is not a TCP port"),
    ({"eset_server": "bad host!"}, "eset_server"),
    ({"eset_server_ca_path": "/nonexistent/ca.pem"}, "eset_server_ca_path: '/nonexistent/ca.pem' does not exist"),
])
def test_bad_server_options_name_the_value(lo: t.Any, spki: ServerPki, changes: dict, words: str) -> None:
    with pytest.raises(ProbeConfigError) as caught:
        probe(lo, spki, 2222, **changes)
    assert words in str(caught.value)


def test_a_ca_file_without_certificates_is_named(lo: t.Any, spki: ServerPki, tmp_path: Path) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    with pytest.raises(ProbeConfigError) as caught:
        probe(lo, spki, 2222, eset_server_ca_path=str(empty))
    assert str(caught.value).startswith(f"eset_server_ca_path: {str(empty)!r}")


@pytest.mark.parametrize(("names", "host", "matches"), [
    (["protect.lab"], "PROTECT.lab.", True),
    (["*.lab.example"], "protect.lab.example", True),
    (["*.lab.example"], "a.b.lab.example", False),
    (["*.example"], "protect.example", False),   # a wildcard needs two labels after it
    (["*"], "anything.example", True),
    (["2001:db8::1"], "2001:db8:0::1", True),
    (["protect.lab"], "protect.lab.evil", False),
])
def test_host_name_rules(names: t.List[str], host: str, matches: bool) -> None:
    cert = Certificate([("CN", "x")], [], names, "", "", "")
    assert names_host(cert, host) is matches


def test_module_warns_and_names_the_server_in_its_failure(lo: t.Any, spki: ServerPki,
                                                          run_module: ModuleRun) -> None:
    args = {"host": "127.0.0.1", "primary_port": lo.free_port(), "fallback_port": lo.free_port(), "timeout": 2,
            "eset_server": "127.0.0.1", "eset_server_port": lo.free_port(), "eset_server_ca_path": str(spki.ca),
            "_ansible_check_mode": True}
    result = run_module(epns_probe, args)
    assert result["failed"] is True and result["changed"] is False
    assert "ESET PROTECT server unreachable" in result["msg"] and result["msg"].startswith("EPNS is unreachable")
    assert any("ESET PROTECT server unreachable" in w for w in run_module.warnings)
    assert result["server_paths"][0]["failure"]["class"] == "tcp_refused"
    json.dumps(result)


def test_module_rejects_ca_without_server(run_module: ModuleRun) -> None:
    result = run_module(epns_probe, {"eset_server_ca_path": "/tmp/ca.pem"})
    assert result["failed"] is True and "given without eset_server" in result["msg"]

