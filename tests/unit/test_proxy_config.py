"""proxy_connect_ports without a proxy: snippet rendering, include placement and removal, current limits, the
engine's validate-swap-reload-restore sequence against a fake runner, and bad options."""
from __future__ import annotations

import os
import stat
import typing as t
from pathlib import Path

import pytest
from _module_run import ModuleRun
from ansible_collections.protectnet.epns.plugins.module_utils._host._run import Runner
from ansible_collections.protectnet.epns.plugins.module_utils._proxy import _conf, _engine
from ansible_collections.protectnet.epns.plugins.module_utils._proxy._apache import Apache
from ansible_collections.protectnet.epns.plugins.module_utils._proxy._model import (
    BEGIN_MARK,
    END_MARK,
    ProxyError,
    ProxyRequest,
    check_networks,
    check_ports,
    squid_seconds,
)
from ansible_collections.protectnet.epns.plugins.module_utils._proxy._squid import Squid
from ansible_collections.protectnet.epns.plugins.modules import proxy_connect_ports

SQUID_CONF = """acl SSL_ports port 443
acl Safe_ports port 1025-65535
acl mine dstdomain .example.org
http_access deny !Safe_ports
http_access deny CONNECT !SSL_ports
include /etc/squid/conf.d/*.conf
http_access deny all
http_port 3128
"""
SETTINGS = ProxyRequest(ports=(8883, 443), allowed_sources=("10.0.0.0/8", "2001:db8::/32"), epns_host="epns.eset.com")


def test_squid_include_goes_before_the_first_http_access_and_comes_out_byte_for_byte() -> None:
    squid = Squid()
    after = _conf.with_block(SQUID_CONF, squid.include_line("/etc/squid/protectnet_epns.conf"), squid.include_position)
    lines = after.splitlines()
    assert lines[3:6] == [BEGIN_MARK, "include /etc/squid/protectnet_epns.conf", END_MARK]
    assert lines[6] == "http_access deny !Safe_ports"
    assert _conf.with_block(after, squid.include_line("/etc/squid/protectnet_epns.conf"),
                            squid.include_position) == after  # idempotent
    assert _conf.without_block(after) == SQUID_CONF


def test_apache_include_goes_at_the_end_even_without_a_final_newline() -> None:
    apache = Apache()
    after = _conf.with_block("ServerName x\nTimeout 300", apache.include_line("/etc/apache2/p.conf"),
                             apache.include_position)
    assert after == f'ServerName x\nTimeout 300\n{BEGIN_MARK}\nInclude "/etc/apache2/p.conf"\n{END_MARK}\n'


def test_squid_snippet_restricted_by_name_and_addresses() -> None:
    settings = ProxyRequest(**{**SETTINGS.__dict__, "destinations": ("91.228.165.144/28",)})
    text = Squid().snippet(settings, [], [])
    assert "acl protectnet_epns_src src 10.0.0.0/8 2001:db8::/32" in text
    assert "acl protectnet_epns_ports port 8883 443" in text
    assert "acl protectnet_epns_name dstdomain -n epns.eset.com" in text
    assert "acl protectnet_epns_addr dst 91.228.165.144/28" in text
    rules = [line for line in text.splitlines() if line.startswith("http_access")]
    assert rules == [
        "http_access allow protectnet_epns_connect protectnet_epns_src protectnet_epns_ports protectnet_epns_name",
        "http_access allow protectnet_epns_connect protectnet_epns_src protectnet_epns_ports protectnet_epns_addr"]


def test_squid_limits_defaults_then_last_one_wins(tmp_path: Path) -> None:
    conf = tmp_path / "squid.conf"
    inc = tmp_path / "inc.conf"
    inc.write_text("read_timeout 30 minutes\n")
    conf.write_text(f"read_timeout 5 minutes\ninclude {inc}\nclient_lifetime 2 hours\n")
    squid = Squid()
    limits = {limit.name: limit for limit in squid.limits(squid.directives(str(conf), {}))}
    assert limits["read_timeout"].seconds == 1800 and limits["read_timeout"].source == f"{inc}:1"
    assert limits["client_lifetime"].seconds == 7200
    defaults = {limit.name: limit for limit in squid.limits([])}
    assert defaults["read_timeout"].seconds == 900 and defaults["read_timeout"].source == "default"
    assert defaults["client_lifetime"].seconds == 86400


def test_squid_raises_only_what_is_lower() -> None:
    settings = ProxyRequest(**{**SETTINGS.__dict__, "raise_idle_timeouts": True, "idle_timeout": 3600,
                           "connection_lifetime": 86400})
    squid = Squid()
    text = squid.snippet(settings, [], squid.limits([]))
    assert "read_timeout 3600 seconds" in text and "client_lifetime" not in text  # 1 day already


def test_apache_keeps_the_implicit_default_and_denies_new_ports_elsewhere() -> None:
    settings = SETTINGS
    apache = Apache()
    text = apache.snippet(settings, [], apache.limits([]))
    assert "AllowCONNECT 8883 443 563" in text
    assert '[^/]*:8883(?:/.*)?$">\n    Require all denied' in text
    assert "epns\\.eset\\.com:(?:8883|443)" in text and "AuthMerging Or" in text
    explicit = [_conf.Directive("a.conf", 1, "AllowCONNECT", ("443", "563"))]
    assert "AllowCONNECT 8883 443\n" in apache.snippet(settings, explicit, [])


def test_apache_effective_idle_is_the_lower_of_timeout_and_proxytimeout() -> None:
    apache = Apache()
    d = [_conf.Directive("a", 1, "Timeout", ("300",)), _conf.Directive("a", 2, "ProxyTimeout", ("7200",))]
    limits = {limit.name: limit for limit in apache.limits(d)}
    assert limits["effective_idle"].seconds == 300
    assert {limit.name: limit for limit in apache.limits([])}["ProxyTimeout"].seconds == 60


@pytest.mark.parametrize("text,seconds", [("15 minutes", 900), ("1 day", 86400), ("30", 30), ("2 hours", 7200),
                                          ("5 flubs", None), ("", None)])
def test_squid_durations(text: str, seconds: t.Optional[float]) -> None:
    assert squid_seconds(text) == seconds


def test_option_checks() -> None:
    assert check_ports([8883, 443, 8883]) == (8883, 443)
    with pytest.raises(ProxyError, match="out of range"):
        check_ports([0])
    with pytest.raises(ProxyError, match=r"did you mean 10\.0\.0\.0/8"):
        check_networks(["10.1.2.3/8"], "allowed_sources")
    with pytest.raises(ProxyError, match="not an IPv4/IPv6"):
        check_networks(["agents"], "allowed_sources")


class FakeRunner(Runner):
    """squid: running, validation fails when a candidate names `bad`; records every argv. Any other command fails
    the test."""

    def __init__(self, reload_rc: int = 0) -> None:
        self.calls: t.List[t.List[str]] = []
        self.reload_rc = reload_rc

    def which(self, name: str) -> t.Optional[str]:
        return "/usr/sbin/squid" if name == "squid" else None

    def run(self, argv: t.Sequence[str], data: t.Optional[str] = None,
            cwd: t.Optional[str] = None) -> t.Tuple[int, str, str]:
        self.calls.append(list(argv))
        if argv[1:3] == ["-k", "parse"]:
            text = Path(argv[-1]).read_text()
            included = "".join(Path(line.split()[1]).read_text() for line in text.splitlines()
                               if line.startswith("include /") and Path(line.split()[1]).exists())
            return (1, "", "FATAL: Bungled bad") if "bad" in text + included else (0, "", "")
        if argv[1:3] == ["-k", "reconfigure"]:
            return self.reload_rc, "", "reload failed" if self.reload_rc else ""
        if argv[1:3] == ["-k", "check"]:
            return 0, "", ""
        pytest.fail(f"unexpected command {list(argv)}: this squid fake does not name it")


def settings_for(tmp_path: Path, **over: t.Any) -> ProxyRequest:
    conf = tmp_path / "squid.conf"
    if not conf.exists():
        conf.write_text(SQUID_CONF)
    return ProxyRequest(**{**SETTINGS.__dict__, "proxy": "squid", "config_path": str(conf), **over})


def test_engine_check_mode_writes_nothing_and_second_run_changes_nothing(tmp_path: Path) -> None:
    runner = FakeRunner()
    dry = _engine.run(settings_for(tmp_path), runner, check_mode=True)
    assert dry["changed"] and dry["validated"] and not dry["reloaded"]
    assert (tmp_path / "squid.conf").read_text() == SQUID_CONF and not (tmp_path / "protectnet_epns.conf").exists()
    assert not any(c[1:3] == ["-k", "reconfigure"] for c in runner.calls)
    real = _engine.run(settings_for(tmp_path), runner, check_mode=False)
    assert real["changed"] and real["reloaded"]
    assert real["diff"][0]["before"] == "" and "protectnet_epns_src" in real["diff"][0]["after"]
    again = _engine.run(settings_for(tmp_path), FakeRunner(), check_mode=False)
    assert not again["changed"]
    gone = _engine.run(settings_for(tmp_path, state="absent"), FakeRunner(), check_mode=False)
    assert gone["changed"] and (tmp_path / "squid.conf").read_text() == SQUID_CONF
    assert not (tmp_path / "protectnet_epns.conf").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another owner needs root")
def test_engine_keeps_mode_and_owner_of_the_configuration_and_gives_them_to_a_new_snippet(tmp_path: Path) -> None:
    conf = tmp_path / "squid.conf"
    conf.write_text(SQUID_CONF)
    conf.chmod(0o755)
    os.chown(conf, 1234, 2345)
    assert _engine.run(settings_for(tmp_path), FakeRunner(), check_mode=False)["changed"]
    for path in (conf, tmp_path / "protectnet_epns.conf"):
        found = path.stat()
        assert (found.st_uid, found.st_gid, stat.S_IMODE(found.st_mode)) == (1234, 2345, 0o755), path
    assert _engine.run(settings_for(tmp_path, state="absent"), FakeRunner(), check_mode=False)["changed"]
    found = conf.stat()
    assert (found.st_uid, found.st_gid, stat.S_IMODE(found.st_mode)) == (1234, 2345, 0o755)


def test_engine_failed_validation_and_failed_reload_leave_the_files(tmp_path: Path) -> None:
    with pytest.raises(ProxyError, match="new configuration fails validation"):
        _engine.run(settings_for(tmp_path, extra_directives=("bad directive",)), FakeRunner(), check_mode=False)
    assert (tmp_path / "squid.conf").read_text() == SQUID_CONF and not (tmp_path / "protectnet_epns.conf").exists()
    runner = FakeRunner(reload_rc=1)
    with pytest.raises(_engine.ApplyError, match="previous files restored and reloaded"):
        _engine.run(settings_for(tmp_path), runner, check_mode=False)
    assert (tmp_path / "squid.conf").read_text() == SQUID_CONF and not (tmp_path / "protectnet_epns.conf").exists()
    assert [c[1:3] for c in runner.calls].count(["-k", "reconfigure"]) == 2  # the change, then the old files


def test_engine_refuses_a_stopped_proxy(tmp_path: Path) -> None:
    class Stopped(FakeRunner):
        def run(self, argv: t.Sequence[str], data: t.Optional[str] = None,
                cwd: t.Optional[str] = None) -> t.Tuple[int, str, str]:
            if argv[1:3] == ["-k", "check"]:
                return 1, "", "squid: ERROR: No running copy"
            return super().run(argv, data, cwd)

    with pytest.raises(ProxyError, match=r"not running.*No running copy"):
        _engine.run(settings_for(tmp_path), Stopped(), check_mode=False)


@pytest.fixture
def refused(run_module: ModuleRun) -> ModuleRun:
    run_module.refuse_commands()
    return run_module


@pytest.mark.parametrize("args,message", [
    ({"allowed_sources": ["10.0.0.0/8"], "ports": [65536]}, "out of range"),
    ({}, "allowed_sources is required"),
    ({"allowed_sources": ["10.0.0.0/8"], "destinations": ["1.2.3.4"], "allow_connect_to_any_host": True},
     "do not apply with allow_connect_to_any_host"),
    ({"allowed_sources": ["10.0.0.0/8"], "restrict_to_epns": False}, "set allow_connect_to_any_host=true"),
    ({"allowed_sources": ["10.0.0.0/8"], "epns_host": ""}, "no EPNS destination"),
    ({"allowed_sources": ["10.0.0.0/8"], "epns_host": "epns.eset.com:8883"},
     "epns_host: 'epns.eset.com:8883' is not a host name: write it without a port; accepted: a DNS name"),
    ({"allowed_sources": ["10.0.0.0/8"], "epns_host": "10.0.0.1"}, "epns_host: '10.0.0.1' is not a valid host name"),
    ({"allowed_sources": ["10.0.0.0/8"], "idle_timeout": 5}, "idle_timeout must be"),
])
def test_bad_options_fail_before_any_command(args: dict, message: str, refused: ModuleRun) -> None:
    result = refused(proxy_connect_ports, args)
    assert result["failed"] and message in result["msg"] and not result["changed"]


def test_eset_bridge_reports_and_changes_nothing(refused: ModuleRun) -> None:
    result = refused(proxy_connect_ports, {"proxy": "eset_bridge", "allowed_sources": ["10.0.0.0/8"]})
    assert not result["changed"] and result["manual"]
    assert any("8883" in step for step in result["eset_bridge"]["manual_steps"])


def module_settings(**args: t.Any) -> ProxyRequest:
    """The ProxyRequest the module builds from its defaults (argument_spec) plus args."""
    spec = proxy_connect_ports.argument_spec()
    params = {name: option.get("default") for name, option in spec.items()}
    return proxy_connect_ports.request_from({**params, "allowed_sources": ["10.0.0.0/8"], **args})


def http_access(text: str) -> t.List[str]:
    return [line for line in text.splitlines() if line.startswith("http_access")]


def test_squid_defaults_add_exactly_one_allow_to_epns_by_name_on_8883() -> None:
    text = Squid().snippet(module_settings(), [], [])
    assert "acl protectnet_epns_ports port 8883\n" in text
    assert "acl protectnet_epns_name dstdomain -n epns.eset.com" in text
    assert http_access(text) == [
        "http_access allow protectnet_epns_connect protectnet_epns_src protectnet_epns_ports protectnet_epns_name"]


def test_squid_any_host_only_by_the_option_that_says_so() -> None:
    text = Squid().snippet(module_settings(allow_connect_to_any_host=True), [], [])
    assert http_access(text) == ["http_access allow protectnet_epns_connect protectnet_epns_src protectnet_epns_ports"]


def test_squid_include_goes_before_an_authentication_rule() -> None:
    conf = ("auth_param basic program /usr/lib/squid/basic_ncsa_auth /etc/squid/passwd\n"
            "acl authed proxy_auth REQUIRED\nhttp_access deny !authed\nhttp_access deny CONNECT !SSL_ports\n")
    squid = Squid()
    lines = _conf.with_block(conf, squid.include_line("/etc/squid/p.conf"), squid.include_position).splitlines()
    assert lines.index("include /etc/squid/p.conf") < lines.index("http_access deny !authed")


SITE_DENIES = [
    # (the site's acl lines, its deny rule, whether that rule names EPNS)
    (["acl no_eset dstdomain .eset.com"], "http_access deny no_eset", True),
    (["acl no_epns dstdomain epns.eset.com"], "http_access deny CONNECT no_epns", True),
    (["acl no_epns dstdomain -n EPNS.eset.com"], "http_access deny no_epns", True),
    (["acl push dstdom_regex -i ^EPNS\\."], "http_access deny push", True),
    (["acl list dstdomain \"{file}\""], "http_access deny list", True),
    (["acl other dstdomain .eset.com.example"], "http_access deny other", False),
    (["acl no_eset dstdomain .eset.com"], "http_access deny !no_eset", False),
    (["acl no_eset dstdomain .eset.com"], "http_access allow no_eset", False),
    ([], "http_access deny all", False),
]


@pytest.mark.parametrize("acls,rule,names", SITE_DENIES)
def test_squid_site_deny_naming_epns_keeps_winning(tmp_path: Path, acls: t.List[str], rule: str, names: bool) -> None:
    listed = tmp_path / "blocked.txt"
    listed.write_text("# ESET\n.eset.com\n")
    conf = tmp_path / "squid.conf"
    conf.write_text("".join(line.format(file=listed) + "\n" for line in acls) + rule + "\n")
    squid = Squid()
    baseline = squid.directives(str(conf), {})
    settings = module_settings()
    denies = squid.site_denies(settings, baseline)
    text = squid.snippet(settings, baseline, [])
    assert denies == ([f"{conf}:{len(acls) + 1}: {rule}"] if names else [])
    assert (http_access(text) == []) is names


def apache_site(tmp_path: Path, text: str) -> t.List[_conf.Directive]:
    conf = tmp_path / "apache2.conf"
    conf.write_text(text)
    return Apache().directives(str(conf), {})


def test_apache_defaults_deny_other_hosts_on_8883_and_allow_epns_only(tmp_path: Path) -> None:
    apache = Apache()
    text = apache.snippet(module_settings(), apache_site(tmp_path, "AllowCONNECT 443 563\n"), [])
    assert "AllowCONNECT 8883\n" in text
    sections = text.split("<ProxyMatch ")[1:]
    assert len(sections) == 2
    assert sections[0].startswith('"^(?i)(?:[a-z][a-z0-9+.-]*://)?(?:[^/@]*@)?[^/]*:8883(?:/.*)?$">\n'
                                  "    Require all denied\n")
    assert sections[1].startswith('"^(?i)(?:[a-z][a-z0-9+.-]*://)?(?:[^/@]*@)?epns\\.eset\\.com:8883(?:/.*)?$">\n'
                                  "    AuthMerging Or\n    Require ip 10.0.0.0/8\n")


@pytest.mark.parametrize("site,names", [
    ("ProxyBlock eset.com\n", True),
    ("ProxyBlock *\n", True),
    ("ProxyBlock blocked.lab\n", False),
    ('<ProxyMatch "eset\\.com">\n    Require all denied\n</ProxyMatch>\n', True),
    ('<Proxy "*epns*">\n    Require not ip 10.1.0.0/16\n</Proxy>\n', True),
    ('<Proxy "*">\n    Require all denied\n</Proxy>\n', False),
    ('<ProxyMatch "eset\\.com">\n    Require ip 10.0.0.0/8\n</ProxyMatch>\n', False),
])
def test_apache_site_deny_naming_epns_keeps_winning(tmp_path: Path, site: str, names: bool) -> None:
    apache = Apache()
    baseline = apache_site(tmp_path, site)
    settings = module_settings()
    text = apache.snippet(settings, baseline, [])
    assert bool(apache.site_denies(settings, baseline)) is names
    assert ("AuthMerging Or" not in text) is names


def test_apache_refuses_a_network_in_destinations_also_when_found_by_auto(tmp_path: Path) -> None:
    class ApacheOnly(FakeRunner):
        def which(self, name: str) -> t.Optional[str]:
            return "/usr/sbin/apache2ctl" if name == "apache2ctl" else None

    settings = module_settings(destinations=["198.51.100.0/24"])
    assert settings.proxy == "auto"
    with pytest.raises(ProxyError, match=r"198\.51\.100\.0/24.*a network cannot be matched"):
        _engine.run(settings, ApacheOnly(), check_mode=True)
    Apache().check_request(module_settings(destinations=["198.51.100.7", "2001:db8::7"]))  # single addresses pass
