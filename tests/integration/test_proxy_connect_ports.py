"""proxy_connect_ports and the epns_proxy role against Debian's squid and Apache httpd in the lab.

Both proxies start like stock installs (CONNECT to 443 only). An agent whose direct path to EPNS is blocked uses
the proxy: before the role, 8883 through it is proxy_refused and the agent degraded; after, reachable. Around that:
check mode, idempotence, the unrelated rule, a tunnel held open across the reload, a config that fails validation,
state=absent giving back the original file byte for byte, and a proxy that is not running.
"""
from __future__ import annotations

import json
import subprocess
import tempfile
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


def connect_status(lab: Any, agent: str, proxy: str, port: int) -> str:
    """The proxy's status line for CONNECT epns.eset.com:port from the agent."""
    code = (f"import socket; s = socket.create_connection(({proxy!r}, 3128), timeout=5); "
            f"s.sendall(b'CONNECT epns.eset.com:{port} HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'); "
            "print(s.recv(200).split(b'\\r\\n')[0].decode())")
    done = lab.run(agent, ["python3", "-c", code], timeout=15)
    return done.stdout.strip() or done.stderr.strip()


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
        "epns_proxy_targets": host, "epns_proxy_allowed_sources": LAB_NETS, "epns_proxy_restrict_to_epns": True,
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
        "epns_proxy_targets": host, "epns_proxy_allowed_sources": LAB_NETS, "epns_proxy_restrict_to_epns": True})
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
