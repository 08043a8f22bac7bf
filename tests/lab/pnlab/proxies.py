"""The managed proxies pn-squid and pn-apache: their starting configuration and their daemons.

Both start like a stock Debian install would: CONNECT to 443 only (squid's `SSL_ports`, Apache's `AllowCONNECT 443
563`), so the proxy_connect_ports module has real work to do. Configs live in the host's overlay /etc (written into
the upper dir before the overlay is mounted), pid files and logs in its private /run (/run/squid, /run/apache2-log).
Each daemon is entered through the host's holder, so it resolves epns.eset.com through the host's own /etc/hosts.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from .proc import LabError, alive, kill_all, run, spawn, wait_for, wait_listening
from .topology import APACHE, LAB_V4_NET, LAB_V6_NET, MANAGED_PROXY_PORT, SQUID, Host

# The unrelated rule a user already had: the module must leave it exactly as it was.
SQUID_CUSTOM_ACL = "acl pnlab_custom_blocked dstdomain .blocked.lab"
APACHE_CUSTOM_LINE = "ProxyBlock blocked.lab"
SQUID_PID = "/run/squid.pid"
APACHE_PID = "/run/apache2/apache2.pid"


def _enter(holder: int) -> list[str]:
    return ["nsenter", "-t", str(holder), "-m", "-n", "-u", "--"]


def _listen(host: Host) -> list[str]:
    return [*(f"{a}:{MANAGED_PROXY_PORT}" for a in host.v4), *(f"[{a}]:{MANAGED_PROXY_PORT}" for a in host.v6)]


def squid_conf(host: Host, log_dir: Path) -> str:
    """Debian's default squid.conf, reduced to its directives, plus the lab's networks and housekeeping."""
    return "\n".join([
        "# pn-squid: Debian's default access rules (CONNECT to 443 only), lab networks allowed",
        "acl localnet src 10.0.0.0/8",
        "acl localnet src 172.16.0.0/12",
        "acl localnet src 192.168.0.0/16",
        "acl localnet src fc00::/7",
        "acl localnet src fe80::/10",
        f"acl pnlab_lab src {LAB_V4_NET} {LAB_V6_NET}",
        "acl SSL_ports port 443",
        "acl Safe_ports port 80",
        "acl Safe_ports port 21",
        "acl Safe_ports port 443",
        "acl Safe_ports port 70",
        "acl Safe_ports port 210",
        "acl Safe_ports port 1025-65535",
        "acl Safe_ports port 280",
        "acl Safe_ports port 488",
        "acl Safe_ports port 591",
        "acl Safe_ports port 777",
        "",
        "# a site's own rule, unrelated to EPNS",
        SQUID_CUSTOM_ACL,
        "",
        "http_access deny !Safe_ports",
        "http_access deny CONNECT !SSL_ports",
        "http_access allow localhost manager",
        "http_access deny manager",
        "include /etc/squid/conf.d/*.conf",
        "http_access deny pnlab_custom_blocked",
        "http_access allow localnet",
        "http_access allow pnlab_lab",
        "http_access allow localhost",
        "http_access deny all",
        "",
        *(f"http_port {a}" for a in _listen(host)),
        "",
        "# lab housekeeping: names from the host's /etc/hosts only, state in the host's private /run and host dir",
        "dns_nameservers 127.0.0.1",
        "dns_timeout 2 seconds",
        f"pid_filename {SQUID_PID}",
        f"cache_log {log_dir / 'cache.log'}",
        f"access_log stdio:{log_dir / 'access.log'}",
        "cache_store_log none",
        "cache deny all",
        f"coredump_dir {log_dir}",
        "netdb_filename none",
        "pinger_enable off",
        "shutdown_lifetime 0 seconds",
        f"visible_hostname {host.short}.lab",
        "cache_effective_user proxy",
        "",
    ])


def apache_proxy_conf() -> str:
    """A forward proxy as ESET's older Apache HTTP Proxy had it: mod_proxy_connect with the default ports."""
    return "\n".join([
        "# pn-apache: forward proxy, CONNECT to Apache's default ports only",
        "ServerName apache.lab",
        "ProxyRequests On",
        "ProxyVia On",
        "AllowCONNECT 443 563",
        "# a site's own rule, unrelated to EPNS",
        APACHE_CUSTOM_LINE,
        '<Proxy "*">',
        f"    Require ip {LAB_V4_NET} {LAB_V6_NET}",
        "</Proxy>",
        "",
    ])


def apache_envvars(log_dir: Path) -> str:
    return "\n".join([
        "unset HOME",
        "SUFFIX=",
        "export APACHE_RUN_USER=www-data",
        "export APACHE_RUN_GROUP=www-data",
        f"export APACHE_PID_FILE={APACHE_PID}",
        "export APACHE_RUN_DIR=/run/apache2",
        "export APACHE_LOCK_DIR=/run/lock/apache2",
        f"export APACHE_LOG_DIR={log_dir}",
        "export LANG=C",
        "",
    ])


def _log_dir(hdir: Path, name: str, owner: str) -> Path:
    log_dir = hdir / name
    log_dir.mkdir(exist_ok=True)
    shutil.chown(log_dir, owner, owner)
    return log_dir


def prepare(hdir: Path, host: Host) -> None:
    """Write the proxy's starting configuration into the host's /etc upper dir (before the overlay is mounted)."""
    upper = hdir / "etc-upper"
    if host.name == SQUID:
        (upper / "squid").mkdir(parents=True, exist_ok=True)
        _log_dir(hdir / "run", "squid", "proxy")  # the host dir is private to root; its /run is not
        (upper / "squid" / "squid.conf").write_text(squid_conf(host, Path("/run/squid")))
    elif host.name == APACHE:
        apache = upper / "apache2"
        for sub in ("mods-enabled", "conf-enabled", "sites-enabled"):
            (apache / sub).mkdir(parents=True, exist_ok=True)
        for mod in ("proxy.load", "proxy.conf", "proxy_connect.load"):
            link = apache / "mods-enabled" / mod
            if not link.is_symlink():
                link.symlink_to(f"../mods-available/{mod}")
        (apache / "ports.conf").write_text("".join(f"Listen {a}\n" for a in _listen(host)))
        (apache / "sites-enabled" / "000-default.conf").write_text("# the lab's apache serves no site\n")
        (apache / "conf-enabled" / "pnlab-proxy.conf").write_text(apache_proxy_conf())
        _log_dir(hdir / "run", "apache2-log", "root")
        (apache / "envvars").write_text(apache_envvars(Path("/run/apache2-log")))
        (hdir / "run" / "apache2").mkdir(parents=True, exist_ok=True)
        (hdir / "run" / "lock" / "apache2").mkdir(parents=True, exist_ok=True)


def _pid_from(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def start_squid(hdir: Path, host: Host, holder: int) -> int:
    pidfile = hdir / "run" / SQUID_PID.removeprefix("/run/")
    pidfile.unlink(missing_ok=True)
    log = hdir / "squid.out"
    pid = spawn([*_enter(holder), "squid", "-N", "-f", "/etc/squid/squid.conf"], log)
    try:
        wait_listening(holder, [("v4", MANAGED_PROXY_PORT), ("v6", MANAGED_PROXY_PORT)], 30, f"squid on {host.name}")
        # `squid -k reconfigure` finds the daemon by its pid file; squid writes it once the ports are open
        wait_for(lambda: pidfile.exists() or not alive(pid), 30, f"squid pid file on {host.name}")
    except LabError as exc:
        cache_log = hdir / "run" / "squid" / "cache.log"
        raise LabError(f"{exc}\n{cache_log.read_text()[-1500:] if cache_log.exists() else ''}") from exc
    return pid


def start_apache(hdir: Path, host: Host, holder: int) -> int:
    pidfile = hdir / "run" / APACHE_PID.removeprefix("/run/")
    pidfile.unlink(missing_ok=True)
    done = run([*_enter(holder), "apache2ctl", "-k", "start"], check=False, timeout=30)
    if done.returncode != 0:
        raise LabError(f"apache2 on {host.name} did not start: {(done.stderr or done.stdout).strip()}")
    wait_for(lambda: _pid_from(pidfile) is not None, 30, f"apache2 pid file on {host.name}")
    wait_listening(holder, [("v4", MANAGED_PROXY_PORT), ("v6", MANAGED_PROXY_PORT)], 30, f"apache2 on {host.name}")
    pid = _pid_from(pidfile)
    assert pid is not None
    return pid


def stop(hdir: Path, host: Host, pid: int | None) -> None:
    """Stop the proxy and wait until its port is closed, so a test sees 'not running' at once."""
    if not pid:
        return
    kill_all([pid], grace=5.0)  # squid (shutdown_lifetime 0) and apache (SIGTERM: stop now) both exit promptly
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if alive(pid):
        raise LabError(f"proxy on {host.name} (pid {pid}) did not stop")
    for pidfile in (SQUID_PID, APACHE_PID):
        (hdir / "run" / pidfile.removeprefix("/run/")).unlink(missing_ok=True)
