"""proxy_connect_ports and the epns_proxy role against Debian's squid and Apache httpd in the lab.

Both proxies start like stock installs (CONNECT to 443 only). An agent whose direct path to EPNS is blocked uses
the proxy: before the role, 8883 through it is proxy_refused and the agent degraded; after, reachable. Around that:
check mode, idempotence, the unrelated rule, a tunnel held open across the reload, a config that fails validation,
state=absent giving back the original file byte for byte, and a proxy that is not running. With the role's defaults
the fix widens nothing: a table of CONNECT targets answers as before but for EPNS on 8883; a site rule that denies
the EPNS name keeps winning; and a raised idle limit keeps a tunnel open past the site's short one.
"""
from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import pytest
from _ansible import PLAYBOOKS, REPO, probe, run_playbook
from pnlab import proxies

pytestmark = pytest.mark.lab

LAB_NETS = ["198.18.0.0/15", "2001:db8::/32"]
CASES = {
    # proxy host, its service, main config, snippet, agent, a directive the proxy rejects, the unrelated rule
    "squid": ("pn-squid", "squid", "squid/squid.conf", "squid/protectnet_epns.conf", "pn-agent1",
              "pnlab_no_such_directive on", "acl pnlab_custom_blocked dstdomain .blocked.lab"),
    "apache": ("pn-apache", "apache2", "apache2/apache2.conf", "apache2/protectnet_epns.conf", "pn-agent2",
               "PnlabNoSuchDirective On", None),
}
APACHE_CUSTOM = ("apache2/conf-enabled/pnlab-proxy.conf", "ProxyBlock blocked.lab")

# Opens a CONNECT tunnel, says the status, waits for a line on stdin, then proves the tunnel still relays with a
# TLS handshake to the broker through it.
TUNNEL = r"""
import socket, ssl, sys
proxy, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((proxy, 3128), timeout=10)
s.sendall(f"CONNECT epns.eset.com:{port} HTTP/1.1\r\nHost: epns.eset.com:{port}\r\n\r\n".encode())
head = b""
while b"\r\n\r\n" not in head:
    chunk = s.recv(1)
    if not chunk:
        break
    head += chunk
print(head.split(b"\r\n")[0].decode(), flush=True)
sys.stdin.readline()
ctx = ssl.create_default_context(cafile=sys.argv[3])
with ctx.wrap_socket(s, server_hostname="epns.eset.com") as tls:
    print("tls", tls.version(), flush=True)
"""


def etc(lab: Any, host: str) -> Path:
    return Path(f"/proc/{lab.holder(host)}/root/etc")


RESTART_GRACE = 10.0  # seconds a proxy may take to listen again after `squid -k reconfigure` or a graceful restart


def connect_status(lab: Any, agent: str, proxy: str, port: int, target: str = "epns.eset.com") -> str:
    """The proxy's status line for CONNECT target:port from the agent. Right after a reload the proxy may refuse
    or drop connections while it restarts its listener: no status line is tried again, for up to RESTART_GRACE."""
    code = (f"import socket; s = socket.create_connection(({proxy!r}, 3128), timeout=5); "
            f"s.sendall(b'CONNECT {target}:{port} HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'); "
            "print(s.recv(200).split(b'\\r\\n')[0].decode())")
    deadline = time.monotonic() + RESTART_GRACE
    while True:
        done = lab.run(agent, ["python3", "-c", code], timeout=15)
        if done.stdout.strip() or time.monotonic() > deadline:
            return done.stdout.strip() or done.stderr.strip()
        time.sleep(0.5)


def configure(lab: Any, host: str, args: Dict[str, Any], extra: Sequence[str] = ()) -> Dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pn-proxy-") as work:
        result_file = Path(work) / "results.json"
        done = run_playbook(lab, PLAYBOOKS / "proxy_connect.yml", args=extra, extra_vars={
            "proxy_targets": host, "proxy_args": args, "result_file": str(result_file)})
        if not result_file.exists():
            raise AssertionError(f"no results (rc={done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        result: Dict[str, Any] = json.loads(result_file.read_text())[host]
        return result


def role(lab: Any, host: str, extra: Optional[Dict[str, Any]] = None) -> subprocess.CompletedProcess:
    return run_playbook(lab, REPO / "playbooks" / "proxy.yml", extra_vars={
        "epns_proxy_targets": host, "epns_proxy_allowed_sources": LAB_NETS,
        "epns_proxy_raise_idle_timeouts": True, **(extra or {})})


def path_outcome(result: Dict[str, Any], path_id: str) -> str:
    path = next(p for p in result["paths"] if p["id"] == path_id)
    return "ok" if path["ok"] else str(path["failure"]["class"])


def original_main(lab: Any, kind: str) -> bytes:
    """The main file as the lab wrote it (squid) or Debian shipped it (Apache: the overlay's lower /etc)."""
    if kind == "squid":
        return proxies.squid_conf(lab.hosts["pn-squid"], Path("/run/squid")).encode()
    return Path("/etc/apache2/apache2.conf").read_bytes()


def via(kind: str) -> str:
    return f"http://{kind}.lab:3128"


@pytest.mark.parametrize("kind", list(CASES))
def test_proxy_turns_degraded_into_reachable(lab: Any, kind: str) -> None:
    host, _service, conf, snippet, agent, _bad, custom = CASES[kind]
    proxy = f"{kind}.lab"
    original = (etc(lab, host) / conf).read_bytes()
    for port in (8883, 443):
        lab.fault(agent, "block", port=port, to="epns", action="reject")  # only the proxy path counts
    before = probe(lab, {agent: {"proxies": [via(kind)], "timeout": 15}})[agent]
    assert path_outcome(before, f"8883 via {via(kind)}") == "proxy_refused"
    assert path_outcome(before, f"443 via {via(kind)}") == "ok"
    assert before["verdict"] == "degraded"

    dry = run_playbook(lab, REPO / "playbooks" / "proxy.yml", args=["--check", "--diff"], extra_vars={
        "epns_proxy_targets": host, "epns_proxy_allowed_sources": LAB_NETS})
    assert dry.returncode == 0, dry.stdout[-3000:]
    assert "changed=1" in dry.stdout and "protectnet_epns" in dry.stdout  # the diff names the snippet
    assert (etc(lab, host) / conf).read_bytes() == original
    assert not (etc(lab, host) / snippet).exists()
    assert "403" in connect_status(lab, agent, proxy, 8883)

    # a tunnel opened before the reload must still relay after it
    tunnel = subprocess.Popen(lab.exec_argv(agent, ["python3", "-c", TUNNEL, proxy, "443", str(lab.ca_path)]),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert tunnel.stdout is not None and tunnel.stdin is not None
    assert " 200 " in tunnel.stdout.readline()
    done = role(lab, host)
    assert done.returncode == 0 and "changed=1" in done.stdout, done.stdout[-3000:]
    out, err = tunnel.communicate("go\n", timeout=20)
    assert out.startswith("tls TLS"), (out, err)

    after = probe(lab, {agent: {"proxies": [via(kind)], "timeout": 15}})[agent]
    assert path_outcome(after, f"8883 via {via(kind)}") == "ok"
    assert after["verdict"] == "reachable"

    again = role(lab, host)
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-3000:]
    text = (etc(lab, host) / conf).read_text()
    if custom:
        assert custom in text
    else:
        assert APACHE_CUSTOM[1] in (etc(lab, host) / APACHE_CUSTOM[0]).read_text()
    # only the marked include block was added to the main file
    lines = [line for line in text.splitlines(keepends=True)
             if "protectnet" not in line]
    assert "".join(lines).encode() == original


@pytest.mark.parametrize("kind", list(CASES))
def test_failures_leave_the_proxy_as_it_was(lab: Any, kind: str) -> None:
    host, service, conf, snippet, agent, bad, _custom = CASES[kind]
    proxy = f"{kind}.lab"
    base = {"allowed_sources": LAB_NETS, "proxy": kind}
    applied = configure(lab, host, base)
    assert not applied.get("failed"), applied
    main = (etc(lab, host) / conf).read_bytes()
    snip = (etc(lab, host) / snippet).read_bytes()
    limits = {item["name"]: item for item in applied["limits"]}
    assert ("read_timeout" if kind == "squid" else "effective_idle") in limits
    assert applied["limits_tradeoff"]

    broken = configure(lab, host, {**base, "extra_directives": [bad]})
    assert broken.get("failed") and "fails validation" in broken["msg"], broken
    assert (etc(lab, host) / conf).read_bytes() == main and (etc(lab, host) / snippet).read_bytes() == snip
    assert " 200 " in connect_status(lab, agent, proxy, 8883)  # the running proxy kept its configuration

    out_of_range = configure(lab, host, {**base, "ports": [8883, 70000]})
    assert out_of_range.get("failed") and "out of range" in out_of_range["msg"]
    host_bits = configure(lab, host, {**base, "allowed_sources": ["198.18.0.1/15"]})
    assert host_bits.get("failed") and "did you mean 198.18.0.0/15" in host_bits["msg"]

    lab.stop_service(host, service)
    try:
        stopped = configure(lab, host, base)
        assert stopped.get("failed") and "not running" in stopped["msg"], stopped
    finally:
        lab.start_service(host, service)

    other = "apache" if kind == "squid" else "squid"
    missing = configure(lab, host, {**base, "proxy": other})
    assert missing.get("failed") and ("not installed" in missing["msg"] or "not running" in missing["msg"])

    removed = configure(lab, host, {"state": "absent", "proxy": kind})
    assert removed["changed"] and not removed.get("failed"), removed
    assert (etc(lab, host) / conf).read_bytes() == original_main(lab, kind)  # byte for byte
    assert not (etc(lab, host) / snippet).exists()
    assert "403" in connect_status(lab, agent, proxy, 8883)


# Every CONNECT a site's stock proxy answers one way, with the name (or address) the agent writes: EPNS on both
# ports, a non-EPNS host that listens on both, the broker's address written as an address, the site-denied
# blocked.lab, and a host that listens on neither.
TARGETS = [("epns.eset.com", 8883), ("epns.eset.com", 443), ("hostile.lab", 8883), ("hostile.lab", 443),
           ("198.18.1.10", 8883), ("blocked.lab", 443), ("blocked.lab", 8883), ("server.lab", 8883)]


def statuses(lab: Any, agent: str, kind: str) -> Dict[str, str]:
    """The proxy's status code for each of TARGETS ('HTTP/1.1 403 Forbidden' -> '403'; else the whole text)."""
    out = {}
    for target, port in TARGETS:
        line = connect_status(lab, agent, f"{kind}.lab", port, target)
        words = line.split()
        out[f"{target}:{port}"] = words[1] if len(words) > 1 and words[0].startswith("HTTP/") else line
    return out


def unchanged(kind: str, before: Dict[str, str], **opened: str) -> Dict[str, str]:
    """The answers expected after the module ran: the same as before, but for what it opened."""
    expected = {**before, **opened}
    if kind == "apache":
        # still refused, only earlier: Apache resolved the unresolvable name (502) before it checked AllowCONNECT;
        # with 8883 in AllowCONNECT the snippet's `Require all denied` refuses it first (403)
        assert before["blocked.lab:8883"] == "502"
        expected["blocked.lab:8883"] = "403"
    return expected


def stock(lab: Any, kind: str) -> None:
    """Back to the stock proxy: an earlier test may have left the managed snippet in place."""
    removed = configure(lab, CASES[kind][0], {"state": "absent", "proxy": kind})
    assert not removed.get("failed"), removed


@pytest.mark.parametrize("kind", list(CASES))
def test_defaults_open_epns_on_8883_and_nothing_else(lab: Any, kind: str) -> None:
    host, _service, conf, _snippet, agent, _bad, _custom = CASES[kind]
    stock(lab, kind)
    before = statuses(lab, agent, kind)
    assert before["epns.eset.com:8883"] == "403" and before["hostile.lab:443"] == "200", before

    done = run_playbook(lab, REPO / "playbooks" / "proxy.yml", extra_vars={
        "epns_proxy_targets": host, "epns_proxy_allowed_sources": LAB_NETS})
    assert done.returncode == 0 and "changed=1" in done.stdout, done.stdout[-3000:]
    after = statuses(lab, agent, kind)
    assert after == unchanged(kind, before, **{"epns.eset.com:8883": "200"}), (before, after)
    if kind == "squid":  # before the stock port denies, so before any authentication rule too
        lines = (etc(lab, host) / conf).read_text().splitlines()
        include = next(i for i, line in enumerate(lines) if line.startswith("include ") and "protectnet" in line)
        first_rule = next(i for i, line in enumerate(lines) if line.startswith("http_access"))
        assert include < first_rule and lines[first_rule] == "http_access deny !Safe_ports"
    stock(lab, kind)


# The site's own short idle limit, read before the managed snippet (squid) / before its include (Apache).
SHORT_IDLE = {"squid": ("squid/squid.conf", "read_timeout 4 seconds\n", ["squid", "-k", "reconfigure"]),
              "apache": ("apache2/conf-enabled/pnlab-proxy.conf", "Timeout 4\n", ["apache2ctl", "-k", "graceful"])}


def open_tunnel(lab: Any, agent: str, kind: str) -> subprocess.Popen:
    """A CONNECT tunnel to EPNS on 443 whose 200 has been read; an empty answer while the proxy restarts its
    listener is tried again, for up to RESTART_GRACE."""
    deadline = time.monotonic() + RESTART_GRACE
    while True:
        tunnel = subprocess.Popen(lab.exec_argv(agent, ["python3", "-c", TUNNEL, f"{kind}.lab", "443",
                                                        str(lab.ca_path)]),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert tunnel.stdout is not None
        status = tunnel.stdout.readline()
        if status.strip() or time.monotonic() > deadline:
            assert " 200 " in status, status
            return tunnel
        tunnel.communicate("", timeout=20)
        time.sleep(0.5)


def tunnel_after_idle(lab: Any, agent: str, kind: str, idle: float) -> str:
    """Open a CONNECT tunnel to EPNS on 443, stay silent for idle seconds, then shake hands with TLS through it."""
    tunnel = open_tunnel(lab, agent, kind)
    time.sleep(idle)
    out, err = tunnel.communicate("go\n", timeout=20)
    return out.strip() or err.strip().splitlines()[-1]


@pytest.mark.parametrize("kind", list(CASES))
def test_raised_idle_limit_keeps_a_tunnel_open_past_the_old_one(lab: Any, kind: str) -> None:
    host, _service, _conf, _snippet, agent, _bad, _custom = CASES[kind]
    stock(lab, kind)
    path, line, reload = SHORT_IDLE[kind]
    site = etc(lab, host) / path
    original = site.read_bytes()
    text = original.decode()
    site.write_text(line + text if kind == "squid" else text + line)
    try:
        assert lab.run(host, reload).returncode == 0
        assert not tunnel_after_idle(lab, agent, kind, 8).startswith("tls TLS")  # the old limit cuts it
        raised = configure(lab, host, {"proxy": kind, "allowed_sources": LAB_NETS, "raise_idle_timeouts": True,
                                       "idle_timeout": 60})
        assert raised["changed"] and not raised.get("failed"), raised
        assert tunnel_after_idle(lab, agent, kind, 8).startswith("tls TLS")
    finally:
        site.write_bytes(original)
        stock(lab, kind)
        lab.run(host, reload)


# A site rule that denies the EPNS name, added to the site's own file.
SITE_DENY = {"squid": ("squid/squid.conf", "acl pnlab_no_eset dstdomain .eset.com\n",
                       "http_access deny pnlab_no_eset\n", ["squid", "-k", "reconfigure"]),
             "apache": ("apache2/conf-enabled/pnlab-proxy.conf", "", "ProxyBlock eset.com\n",
                        ["apache2ctl", "-k", "graceful"])}


@pytest.mark.parametrize("kind", list(CASES))
def test_a_site_deny_naming_epns_keeps_winning_and_is_reported(lab: Any, kind: str) -> None:
    host, _service, _conf, _snippet, agent, _bad, _custom = CASES[kind]
    stock(lab, kind)
    path, acl_line, rule, reload = SITE_DENY[kind]
    site = etc(lab, host) / path
    original = site.read_bytes()
    text = original.decode()
    if kind == "squid":  # the acl with the others, the deny among the site's rules after the stock port denies
        text = text.replace("http_access deny !Safe_ports\n", f"{acl_line}http_access deny !Safe_ports\n")
        text = text.replace("http_access deny pnlab_custom_blocked\n", f"http_access deny pnlab_custom_blocked\n{rule}")
    else:
        text += rule
    site.write_text(text)
    try:
        assert lab.run(host, reload).returncode == 0
        before = statuses(lab, agent, kind)
        result = configure(lab, host, {"proxy": kind, "allowed_sources": LAB_NETS})
        assert not result.get("failed"), result
        assert [rule.strip() in entry for entry in result["epns_denied_by"]] == [True], result["epns_denied_by"]
        assert any("keeps winning" in w for w in result.get("warnings", [])), result.get("warnings")
        assert statuses(lab, agent, kind) == unchanged(kind, before)  # EPNS on 8883 included: still refused
    finally:
        site.write_bytes(original)
        stock(lab, kind)
        lab.run(host, reload)
