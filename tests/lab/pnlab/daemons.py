"""Starting the lab's daemons in their namespaces; each returns its pid once it is listening."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from .configs import BROKER_ROLES, mosquitto_config, squid_config, squid_hosts, sshd_config
from .hostfs import host_dir
from .pki import Pki
from .proc import LabError, spawn, wait_listening
from .topology import (
    EPNS,
    EPNS_NAME,
    EPNS_PORTS,
    ESET_SERVER_PORT,
    GARBAGE_PROXY_PORT,
    HOSTILE_PORTS,
    PROXY,
    PROXY_PORTS,
    SERVER,
    SLOW_PROXY_PORT,
    Host,
    role_addrs,
    server_host,
)

LAB_DIR = Path(__file__).resolve().parent.parent
BOTH = ("v4", "v6")


def _own(path: Path, user: str) -> None:
    shutil.chown(path, user, user)


def start_sshd(state: Path, host: Host, holder: int, authorized_keys: Path) -> int:
    hdir = host_dir(state, host)
    config = hdir / "sshd_config"
    config.write_text(sshd_config(host, hdir, authorized_keys))
    pid = spawn(["nsenter", "-t", str(holder), "-m", "-n", "-u", "--",
                 "/usr/sbin/sshd", "-D", "-f", str(config), "-E", str(hdir / "sshd.log")], hdir / "sshd.out")
    return pid


def wait_sshd(host: Host, pid: int) -> None:
    wait_listening(pid, [(f, 22) for f in BOTH], 30, f"sshd on {host.name}")


def epns_dir(state: Path) -> Path:
    return state / "epns"


def start_mosquitto(state: Path, pki: Pki) -> int:
    run_dir = epns_dir(state)
    run_dir.mkdir(exist_ok=True)
    _own(run_dir, "mosquitto")
    config = run_dir / "mosquitto.conf"
    config.write_text(mosquitto_config(pki, run_dir))
    return spawn(["ip", "netns", "exec", EPNS, "mosquitto", "-c", str(config)], run_dir / "mosquitto.out")


def wait_mosquitto(pid: int) -> None:
    """Every listener (one broker serves each variant's addresses): one up on a port is not all of them up."""
    wait_listening(pid, [(a, p) for role in BROKER_ROLES for a in role_addrs(role) for p in EPNS_PORTS], 30,
                   "mosquitto")


def start_hostile(state: Path, pki: Pki) -> int:
    run_dir = epns_dir(state)
    run_dir.mkdir(exist_ok=True)
    argv = [sys.executable, str(LAB_DIR / "hostile.py"), "--cert", str(pki.cert("broker")),
            "--key", str(pki.key("broker")), "--client-ca", str(pki.ca)]
    for addr in role_addrs("hostile"):
        argv += ["--address", addr]
    return spawn(["ip", "netns", "exec", EPNS, *argv], run_dir / "hostile.log")


def wait_hostile(pid: int) -> None:
    ports = (*HOSTILE_PORTS.values(), SLOW_PROXY_PORT, GARBAGE_PROXY_PORT)
    wait_listening(pid, [(f, p) for f in BOTH for p in ports], 30, "hostile peers")


def start_protect_server(state: Path, pki: Pki) -> int:
    """The ESET PROTECT server's agent port on pn-server: TLS with the lab's ESET PROTECT CA, nothing above it."""
    run_dir = state / "protect"
    run_dir.mkdir(exist_ok=True)
    argv = [sys.executable, str(LAB_DIR / "protect_server.py"), "--port", str(ESET_SERVER_PORT),
            "--cert", str(pki.cert("eset-server")), "--key", str(pki.key("eset-server"))]
    for addr in (*server_host().v4, *server_host().v6):
        argv += ["--address", addr]
    return spawn(["ip", "netns", "exec", SERVER, *argv], run_dir / "protect_server.log")


def wait_protect_server(pid: int) -> None:
    wait_listening(pid, [(f, ESET_SERVER_PORT) for f in BOTH], 30, "ESET PROTECT server stand-in")


def start_squid(state: Path) -> int:
    run_dir = state / "proxy"
    run_dir.mkdir(exist_ok=True)
    _own(run_dir, "proxy")
    (run_dir / "hosts").write_text(squid_hosts(EPNS_NAME))
    config = run_dir / "squid.conf"
    config.write_text(squid_config(run_dir))
    return spawn(["ip", "netns", "exec", PROXY, "squid", "-N", "-f", str(config)], run_dir / "squid.out")


def wait_squid(pid: int, state: Path) -> None:
    try:
        wait_listening(pid, [(f, p) for f in BOTH for p in PROXY_PORTS], 30, "squid")
    except LabError as exc:
        log = state / "proxy" / "cache.log"
        raise LabError(f"{exc}\n{log.read_text()[-2000:] if log.exists() else ''}") from exc
