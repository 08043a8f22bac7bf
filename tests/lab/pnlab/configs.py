"""Daemon configuration text, rendered from the address plan (pure functions)."""
from __future__ import annotations

from pathlib import Path

from .pki import INTERCEPTORS, Pki
from .topology import EPNS_PORTS, LAB_V4_NET, LAB_V6_NET, PROXY_PORTS, PROXY_SUFFIX, Host, role_addrs, svc_v4, svc_v6


def sshd_config(host: Host, hdir: Path, authorized_keys: Path) -> str:
    listen = [f"ListenAddress {a}:22" for a in host.v4] + [f"ListenAddress [{a}]:22" for a in host.v6]
    return "\n".join([
        *listen,
        f"HostKey {hdir / 'ssh_host_ed25519_key'}",
        f"AuthorizedKeysFile {authorized_keys}",
        "PidFile /run/sshd.pid",  # the host's private /run
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "UseDNS no",  # nothing answers DNS in the lab; lookups would only add delay
        "MaxStartups 100:30:200",  # ansible forks open many sessions at once
        "MaxSessions 50",
        "AcceptEnv LANG LC_*",
        "Subsystem sftp /usr/lib/openssh/sftp-server",
        "LogLevel ERROR",
    ]) + "\n"


def _listener(port: int, addr: str, lines: list[str]) -> list[str]:
    return [f"listener {port} {addr}", *lines, ""]


# The broker variants one mosquitto serves, each on its own addresses (topology.EPNS_ROLES).
BROKER_ROLES = ("broker", "mtls", "intercept", "intercept-corp", "intercept-forti")


def interceptor_role(which: str) -> str:
    """The role (addresses) of the interception endpoint with that CA (pki.INTERCEPTORS)."""
    return "intercept" if which == "intercept" else f"intercept-{which}"


def mosquitto_config(pki: Pki, run_dir: Path) -> str:
    server = [f"certfile {pki.cert('broker')}", f"keyfile {pki.key('broker')}"]
    variants = {
        "broker": {8883: [*server, "allow_anonymous true"], 443: [*server, "allow_anonymous true"]},
        "mtls": {8883: [*server, f"cafile {pki.ca}", "require_certificate true", "allow_anonymous true"],
                 443: [*server, "allow_anonymous false"]},
    }
    for which, (_, _, leaf) in INTERCEPTORS.items():
        cert = [f"certfile {pki.cert(leaf)}", f"keyfile {pki.key(leaf)}", "allow_anonymous true"]
        variants[interceptor_role(which)] = {8883: cert, 443: cert}
    out = ["# one broker process serves every variant; each listener keeps its own auth rules",
           "per_listener_settings true", "user mosquitto", "persistence false",
           # Nagle would hold CONNACK until the client ACKs the TLS 1.3 session tickets: one RTT that belongs
           # to the broker, not to the path being measured.
           "set_tcp_nodelay true",
           f"pid_file {run_dir / 'mosquitto.pid'}", f"log_dest file {run_dir / 'mosquitto.log'}",
           "log_type error", "log_type warning", "log_type notice", "connection_messages true", ""]
    for role in BROKER_ROLES:
        ports = variants[role]
        for addr in role_addrs(role):
            for port in EPNS_PORTS:
                out += _listener(port, addr, ports[port])
    return "\n".join(out)


def squid_config(run_dir: Path) -> str:
    listen = []
    for port in PROXY_PORTS:
        listen += [f"http_port {svc_v4(PROXY_SUFFIX)}:{port}", f"http_port [{svc_v6(PROXY_SUFFIX)}]:{port}"]
    return "\n".join([
        *listen,
        f"acl lab src {LAB_V4_NET} {LAB_V6_NET}",
        "acl CONNECT method CONNECT",
        "acl epns_ports port 443 8883",
        "acl tls_port port 443",
        f"acl via_open localport {PROXY_PORTS[0]}",
        f"acl via_443 localport {PROXY_PORTS[1]}",
        "http_access deny !lab",
        "http_access allow CONNECT via_open epns_ports",
        "# the Apache-style proxy: CONNECT to 443 only",
        "http_access allow CONNECT via_443 tls_port",
        "http_access deny all",
        # Names come from a lab-only file; the resolver points at a loopback nobody answers on.
        f"hosts_file {run_dir / 'hosts'}",
        "dns_nameservers 127.0.0.1",
        "dns_timeout 2 seconds",
        f"pid_filename {run_dir / 'squid.pid'}",
        f"cache_log {run_dir / 'cache.log'}",
        f"access_log stdio:{run_dir / 'access.log'}",
        "cache_store_log none",
        "cache deny all",
        f"coredump_dir {run_dir}",
        "netdb_filename none",
        "pinger_enable off",
        "shutdown_lifetime 0 seconds",
        "visible_hostname proxy.lab",
        "cache_effective_user proxy",
        "logfile_rotate 0",
        "",
    ])


def squid_hosts(epns_name: str) -> str:
    return "".join(f"{a} {epns_name}\n" for a in role_addrs("broker"))
