"""proxy_connect_ports with eset_server: CONNECT to the ESET PROTECT server's agent port, and nothing more."""
from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from _module_run import ModuleRun
from ansible_collections.protectnet.epns.plugins.module_utils._proxy import _conf
from ansible_collections.protectnet.epns.plugins.module_utils._proxy._apache import Apache
from ansible_collections.protectnet.epns.plugins.module_utils._proxy._model import ProxyError, ProxyRequest
from ansible_collections.protectnet.epns.plugins.module_utils._proxy._squid import Squid
from ansible_collections.protectnet.epns.plugins.modules import proxy_connect_ports
from test_proxy_config import http_access, module_settings

ALLOW_SERVER = ("http_access allow protectnet_epns_connect protectnet_epns_src protectnet_epns_server_port "
                "protectnet_epns_server")
PREFIX = "^(?i)(?:[a-z][a-z0-9+.-]*://)?(?:[^/@]*@)?"


def settings(**args: t.Any) -> ProxyRequest:
    return module_settings(**args)


def site(tmp_path: Path, backend: t.Any, text: str, name: str = "proxy.conf") -> t.List[_conf.Directive]:
    conf = tmp_path / name
    conf.write_text(text)
    return backend.directives(str(conf), {})


def test_without_eset_server_the_snippets_do_not_change() -> None:
    assert "server" not in Squid().snippet(settings(), [], [])
    assert ":2222" not in Apache().snippet(settings(), [], [])


def test_squid_allows_the_server_by_name_on_its_port_only() -> None:
    text = Squid().snippet(settings(eset_server="Protect.Lab.", eset_server_port=2222), [], [])
    assert "acl protectnet_epns_server_port port 2222\n" in text
    assert "acl protectnet_epns_server dstdomain -n protect.lab\n" in text
    assert http_access(text) == [
        "http_access allow protectnet_epns_connect protectnet_epns_src protectnet_epns_ports protectnet_epns_name",
        ALLOW_SERVER]


def test_squid_allows_a_server_address_with_dst() -> None:
    text = Squid().snippet(settings(eset_server="[2001:db8::5]"), [], [])
    assert "acl protectnet_epns_server dst 2001:db8::5\n" in text and ALLOW_SERVER in text


def test_squid_server_rule_stays_with_any_host() -> None:
    text = Squid().snippet(settings(eset_server="protect.lab", allow_connect_to_any_host=True), [], [])
    assert http_access(text)[-1] == ALLOW_SERVER


@pytest.mark.parametrize(("acls", "server", "denied"), [
    (["acl no_protect dstdomain .lab"], "protect.lab", True),
    (["acl no_protect dst 198.18.0.0/24"], "198.18.0.5", True),
    (["acl no_protect dst 198.18.1.0/24"], "198.18.0.5", False),
    (["acl no_protect dstdomain other.lab"], "protect.lab", False),
])
def test_squid_site_deny_of_the_server_keeps_winning(tmp_path: Path, acls: t.List[str], server: str,
                                                      denied: bool) -> None:
    squid = Squid()
    baseline = site(tmp_path, squid, "\n".join([*acls, "http_access deny no_protect", "http_access allow all"]) + "\n")
    request = settings(eset_server=server)
    text = squid.snippet(request, baseline, [])
    assert bool(squid.site_denies(request, baseline, server)) is denied
    assert (ALLOW_SERVER in text) is not denied
    # The EPNS allow is not affected by a deny of the server.
    assert http_access(text)[0].endswith("protectnet_epns_name")


def test_apache_adds_the_port_denies_it_elsewhere_and_allows_the_server(tmp_path: Path) -> None:
    apache = Apache()
    text = apache.snippet(settings(eset_server="protect.lab"), site(tmp_path, apache, "AllowCONNECT 443 563\n"), [])
    assert "AllowCONNECT 8883 2222\n" in text
    sections = ["<ProxyMatch " + s for s in text.split("<ProxyMatch ")[1:]]
    assert f'<ProxyMatch "{PREFIX}[^/]*:2222(?:/.*)?$">\n    Require all denied\n' in sections[2]
    assert sections[3].startswith(f'<ProxyMatch "{PREFIX}protect\\.lab:2222(?:/.*)?$">\n    AuthMerging Or\n'
                                  "    Require ip 10.0.0.0/8\n")
    assert len(sections) == 4


def test_apache_server_address_is_matched_as_written() -> None:
    text = Apache().snippet(settings(eset_server="2001:db8::5", eset_server_port=2223), [], [])
    assert f'<ProxyMatch "{PREFIX}\\[2001:db8::5\\]:2223(?:/.*)?$">' in text


def test_apache_port_already_allowed_is_not_denied_to_everyone(tmp_path: Path) -> None:
    apache = Apache()
    text = apache.snippet(settings(eset_server="protect.lab"), site(tmp_path, apache, "AllowCONNECT 443 2222\n"), [])
    assert "[^/]*:2222" not in text and "protect\\.lab:2222" in text


def test_apache_site_deny_of_the_server_keeps_winning(tmp_path: Path) -> None:
    apache = Apache()
    baseline = site(tmp_path, apache, '<ProxyMatch "protect\\.lab">\n    Require all denied\n</ProxyMatch>\n')
    request = settings(eset_server="protect.lab")
    text = apache.snippet(request, baseline, [])
    assert apache.site_denies(request, baseline, "protect.lab")
    assert "protect\\.lab:2222" not in text and "denies the ESET PROTECT server" in text
    assert "epns\\.eset\\.com:8883" in text


@pytest.mark.parametrize(("args", "message"), [
    ({"eset_server": "protect.lab:2222"}, "eset_server: 'protect.lab:2222'"),
    ({"eset_server": "bad name!"}, "eset_server: 'bad name!'"),
    ({"eset_server": "protect.lab", "eset_server_port": 70000}, "eset_server_port: 70000 is out of range"),
])
def test_bad_server_options_are_named(args: dict, message: str) -> None:
    with pytest.raises(ProxyError) as caught:
        settings(**args)
    assert message in str(caught.value)


def test_module_refuses_a_bad_server_before_any_command(run_module: ModuleRun) -> None:
    result = run_module(proxy_connect_ports, {"allowed_sources": ["10.0.0.0/8"], "eset_server": "a b"})
    assert result["failed"] is True and "eset_server: 'a b'" in result["msg"] and "commands" not in result
