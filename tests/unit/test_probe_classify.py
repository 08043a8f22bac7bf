"""Classification, path summary and verdict as pure functions, table-driven."""
from __future__ import annotations

import errno
import os
import socket
import typing as t

import pytest
from ansible_collections.protectnet.epns.plugins.module_utils import _epns as E
from ansible_collections.protectnet.epns.plugins.module_utils._probe import _classify as C
from ansible_collections.protectnet.epns.plugins.module_utils._probe import _engine as P
from ansible_collections.protectnet.epns.plugins.module_utils._probe import _options as S


def test_every_class_has_explanation_and_hint() -> None:
    names = {v for k, v in vars(E).items() if k.isupper() and isinstance(v, str) and v.islower()
             and v in E.FAILURE_CLASSES}
    assert names == set(E.FAILURE_CLASSES)
    # Reports, the docs table and users' playbooks match on these names: a new or lost class is a deliberate change.
    assert sorted(E.FAILURE_CLASSES) == [
        "connection_reset", "dns_no_answer", "dns_nxdomain", "dns_refused", "dns_servfail", "dns_sinkholed",
        "dns_timeout", "idle_dropped", "mqtt_bad_response", "mqtt_no_connack", "mqtt_refused", "probe_error",
        "proxy_bad_response", "proxy_refused", "proxy_unreachable", "tcp_refused", "tcp_timeout", "tcp_unreachable",
        "timeout", "tls_client_cert_required", "tls_handshake_failed", "tls_intercepted", "tls_untrusted"]
    for cls in E.FAILURE_CLASSES.values():
        assert cls.explanation.endswith(".") and cls.hint.endswith(".")


@pytest.mark.parametrize(("exc", "proxy", "bound", "cls"), [
    (socket.timeout("timed out"), False, False, E.TCP_TIMEOUT),
    (socket.timeout("timed out"), False, True, E.TIMEOUT),
    (OSError(errno.ETIMEDOUT, "Connection timed out"), False, False, E.TCP_TIMEOUT),
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), False, False, E.TCP_REFUSED),
    (OSError(errno.EHOSTUNREACH, "No route to host"), False, False, E.TCP_UNREACHABLE),
    (OSError(errno.ENETUNREACH, "Network is unreachable"), False, False, E.TCP_UNREACHABLE),
    (OSError(errno.EPERM, "Operation not permitted"), False, False, E.TCP_UNREACHABLE),
    (OSError(errno.EADDRNOTAVAIL, "Cannot assign"), False, False, E.TCP_UNREACHABLE),
    (OSError(errno.EIO, "weird"), False, False, E.TCP_UNREACHABLE),
    (socket.timeout("timed out"), True, False, E.PROXY_UNREACHABLE),
    (socket.timeout("timed out"), True, True, E.TIMEOUT),
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), True, False, E.PROXY_UNREACHABLE),
    (OSError(errno.EHOSTUNREACH, "No route to host"), True, False, E.PROXY_UNREACHABLE),
])
def test_classify_connect_error(exc: BaseException, proxy: bool, bound: bool, cls: str) -> None:
    got, message = C.classify_connect_error(exc, "192.0.2.1:8883", proxy, bound, 3.0)
    assert got == cls
    assert "192.0.2.1:8883" in message


def attempt(address: str, ok: bool, proven: bool = False, cls: str | None = None, stage: str = "tcp") -> dict:
    failure = C.make_failure(cls, stage, "m") if cls else None
    return {"address": address, "ok": ok, "proven_by_auth": proven, "failure": failure}


@pytest.mark.parametrize(("attempts", "ok", "proven", "failure_cls", "note"), [
    ([attempt("a", True)], True, False, None, None),
    ([attempt("a", False, cls="tcp_refused"), attempt("b", True)], True, False, None, "a failed (tcp_refused)"),
    ([attempt("a", True, True, "mqtt_refused", "mqtt")], True, True, "mqtt_refused", "genuine EPNS server"),
    ([attempt("a", True, True, "mqtt_refused", "mqtt"), attempt("b", True)], True, False, None, "a failed"),
    ([attempt("a", False, cls="tcp_timeout"), attempt("b", False, cls="tls_untrusted", stage="tls")],
     False, False, "tls_untrusted", None),
    ([], False, False, None, None),
])
def test_summarize_path(attempts: list, ok: bool, proven: bool, failure_cls: str | None, note: str | None) -> None:
    got_ok, got_proven, failure, got_note = C.summarize_path(attempts)
    assert (got_ok, got_proven) == (ok, proven)
    assert (failure["class"] if failure else None) == failure_cls
    if note is None:
        assert got_note is None
    else:
        assert got_note is not None and note in got_note


def path(pid: str, role: str, ok: bool, proven: bool = False, cls: str | None = None,
         proxy: str | None = None) -> dict:
    return {"id": pid, "role": role, "ok": ok, "proven_by_auth": proven, "proxy": proxy,
            "failure": C.make_failure(cls, "tcp", "m") if cls else None}


@pytest.mark.parametrize(("paths", "verdict", "reason_has", "fallback"), [
    ([path("8883 direct", "primary", True), path("443 direct", "fallback", True)],
     "reachable", "8883 direct works.", None),
    ([path("8883 direct", "primary", False, cls="tcp_timeout"), path("443 direct", "fallback", True)],
     "degraded", "Only the fallback 443 direct works (8883 direct: tcp_timeout)", "443 direct"),
    ([path("8883 direct", "primary", False, cls="tcp_timeout"),
      path("443 direct", "fallback", False, cls="tcp_refused"),
      path("8883 via http://p:3128", "primary", True, proxy="http://p:3128")],
     "reachable", "8883 via http://p:3128 works", None),
    ([path("8883 direct", "primary", True, proven=True, cls="mqtt_refused")],
     "reachable", "proven by the broker", None),
    ([path("8883 direct", "primary", True, proven=True, cls="mqtt_refused"),
      path("8883 via http://p:3128", "primary", True, proxy="http://p:3128")],
     "reachable", "8883 via http://p:3128 works; also 8883 direct", None),
    ([path("8883 direct", "primary", False, cls="tcp_refused"),
      path("443 direct", "fallback", False, cls="tcp_refused")],
     "unreachable", "No path reaches EPNS (8883 direct: tcp_refused; 443 direct: tcp_refused).", None),
])
def test_verdict(paths: list, verdict: str, reason_has: str, fallback: str | None) -> None:
    got, reason, working = C.compute_verdict(paths)
    assert got == verdict
    assert reason_has in reason
    assert working == fallback
    if verdict == "degraded":
        assert "443 is shared" in reason


def test_verdict_names_dns_failure() -> None:
    dns = {"failure": C.make_failure(E.DNS_NO_ANSWER, "dns", "epns.eset.com does not resolve: x")}
    verdict, reason, _ = C.compute_verdict(
        [path("8883 direct", "primary", False, cls="dns_no_answer")], dns)
    assert verdict == "unreachable" and "does not resolve" in reason


@pytest.mark.parametrize(("verdict", "fail_on", "fails"), [
    ("reachable", "unreachable", False), ("degraded", "unreachable", False), ("unreachable", "unreachable", True),
    ("reachable", "degraded", False), ("degraded", "degraded", True), ("unreachable", "degraded", True),
    ("reachable", "never", False), ("degraded", "never", False), ("unreachable", "never", False),
])
def test_verdict_fails(verdict: str, fail_on: str, fails: bool) -> None:
    assert C.verdict_fails(verdict, fail_on) is fails


@pytest.mark.parametrize(("url", "words"), [
    ("http://user:secret@proxy:3128", "does not support proxy authentication"),
    ("http://user@proxy:3128", "does not support proxy authentication"),
    ("https://proxy:3128", "scheme 'https'"),
    ("socks5://proxy:1080", "scheme 'socks5'"),
    ("proxy:3128", "scheme"),
    ("http://proxy", "has no port"),
    ("http://proxy:0", "must be 1-65535"),
    ("http://proxy:99999", "not a valid URL"),
    ("http://proxy:port", "not a valid URL"),
    ("http://:3128", "has no host"),
    ("http://proxy:3128/path", "path"),
    ("", "empty"),
])
def test_bad_proxy_urls(url: str, words: str) -> None:
    with pytest.raises(S.ProbeConfigError, match=words) as info:
        S.parse_proxy_url(url)
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(("url", "host", "port"), [
    ("http://proxy.lab:3128", "proxy.lab", 3128),
    ("HTTP://Proxy.Lab:3128/", "proxy.lab", 3128),
    ("http://[2001:db8::1]:8080", "2001:db8::1", 8080),
])
def test_good_proxy_urls(url: str, host: str, port: int) -> None:
    spec = S.parse_proxy_url(url)
    assert (spec.host, spec.port) == (host, port)


def test_redact_url() -> None:
    assert S.redact_url("http://u:p@h:1/x") == "http://***@h:1/x"
    assert S.redact_url("http://h:1") == "http://h:1"


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"host": "https://epns.eset.com"}, "host: 'https://epns.eset.com' is not a host name"),
    ({"host": ""}, "host"),
    ({"server_name": "a b"}, "server_name"),
    ({"primary_port": 0}, "primary_port: 0 is not a TCP port"),
    ({"fallback_port": 70000}, "fallback_port: 70000"),
    ({"primary_port": 443}, "must differ"),
    ({"direct": False}, "nothing to probe"),
    ({"address_family": "ipv5"}, "address_family: 'ipv5'"),
    ({"timeout": 0}, "timeout: 0 is out of range"),
    ({"timeout": -1}, "timeout"),
    ({"timeout": float("nan")}, "timeout"),
    ({"connect_timeout": "soon"}, "connect_timeout: 'soon' is not a number"),
    ({"hold_seconds": -1}, "hold_seconds"),
    ({"hold_seconds": 10}, "must be less than timeout"),
    ({"ping_interval": 1}, "only applies while holding"),
    ({"hold_seconds": 5, "ping_interval": 6}, "longer than hold_seconds"),
    ({"hold_seconds": 5, "ping_interval": 0.001}, "more than 1000 pings"),
    ({"ca_path": "/nonexistent/ca.pem"}, "ca_path: '/nonexistent/ca.pem' does not exist"),
    ({"client_cert": "/nonexistent/c.pem"}, "client_cert"),
    ({"expected_issuer": "  "}, "expected_issuer"),
    ({"mqtt_client_id": "x" * 24}, "mqtt_client_id"),
    ({"mqtt_client_id": "bad id"}, "mqtt_client_id: 'bad id'"),
    ({"mqtt_client_id": ""}, "mqtt_client_id"),
])
def test_prepare_rejects(kwargs: dict, words: str) -> None:
    with pytest.raises(S.ProbeConfigError, match=words.replace("(", "\\(")):
        S.prepare(S.ProbeOptions(**kwargs))


def test_prepare_rejects_unloadable_files(tmp_path: t.Any, pki: t.Any) -> None:
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate\n")
    with pytest.raises(S.ProbeConfigError, match=r"ca_path: .* holds no usable"):
        S.prepare(S.ProbeOptions(ca_path=str(bogus)))
    with pytest.raises(S.ProbeConfigError, match=r"client_cert/client_key"):
        S.prepare(S.ProbeOptions(client_cert=str(bogus)))
    with pytest.raises(S.ProbeConfigError, match=r"client_key: .* without client_cert"):
        S.prepare(S.ProbeOptions(client_key=str(pki.client_key)))


def test_encrypted_client_key_fails_instead_of_prompting(tmp_path: t.Any, pki: t.Any) -> None:
    import subprocess

    enc = tmp_path / "enc.key"
    subprocess.run(["openssl", "pkey", "-in", str(pki.client_key), "-aes256", "-passout", "pass:pw",
                    "-out", str(enc)], check=True, capture_output=True)
    with pytest.raises(S.ProbeConfigError, match="unencrypted"):
        S.prepare(S.ProbeOptions(client_cert=str(pki.client_cert), client_key=str(enc)))


def test_keepalive_exceeds_ping_interval() -> None:
    assert S.prepare(S.ProbeOptions()).keepalive == 60
    plan = S.prepare(S.ProbeOptions(hold_seconds=100, timeout=120))
    assert plan.ping_interval == 100 and plan.keepalive == 200


def test_concurrent_sessions_get_distinct_client_ids() -> None:
    probe = P.Probe(S.prepare(S.ProbeOptions(mqtt_client_id="agent-0123456789abcdefg")))
    assert [probe.client_id_for(n) for n in (0, 1, 16, 17)] == [
        "agent-0123456789abcdefg", "agent-0123456789abcde-1", "agent-0123456789abcd-16", "agent-0123456789abcd-17"]
    probe = P.Probe(S.prepare(S.ProbeOptions()))
    ids = {probe.client_id_for(n) for n in range(4)}
    assert len(ids) == 4 and all(i.startswith("pnprobe-") and len(i) == 16 for i in ids)


# Measured in the lab (docs/troubleshooting.md, "Who rejected the connection"): every ICMP reject gives the same
# errno whether this host's firewall or one on the way sent it; only EPERM never comes from the network.
@pytest.mark.parametrize(("code", "local"), [
    (errno.EACCES, False), (errno.EHOSTUNREACH, False), (errno.ENETUNREACH, False), (errno.ENOPROTOOPT, False),
    (errno.ECONNREFUSED, False), (errno.EPERM, True),
])
def test_a_reject_names_the_firewall_only_where_the_errno_proves_it(code: int, local: bool) -> None:
    _, message = C.classify_connect_error(OSError(code, os.strerror(code)), "192.0.2.1:8883", False, False, 3.0)
    if local:
        assert "this host" in message and "on the way" not in message, message
    else:
        assert "on this host or on the way" in message, message
        assert "local firewall" not in message
