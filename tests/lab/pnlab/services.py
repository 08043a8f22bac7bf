"""Per-host services in a managed host's own namespaces: dbus, firewalld, cron, and ufw (rules, not a daemon).

Every daemon is entered through the host's holder (net + mount + UTS), so it sees the host's overlay /etc and
private /run: its pid files, sockets and state never reach the root namespace. `down` needs nothing from here:
it kills every process in a pn-* network namespace, and the holder's mount namespace goes with it.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from . import proxies
from .hostfs import host_dir
from .proc import LabError, alive, kill_all, run, spawn, wait_for
from .topology import APACHE, SQUID, Host

SERVICES = ("dbus", "firewalld", "cron", "ufw", "squid", "apache2")
DAEMONS = ("dbus", "firewalld", "cron", "squid", "apache2")  # ufw only loads rules: nothing runs
PROXY_SERVICES = {"squid": SQUID, "apache2": APACHE}  # each runs on its own managed proxy host, started by `up`
REQUIRES = {"firewalld": ("dbus",)}
FIREWALLD_TIMEOUT = 60.0


def _enter(holder: int) -> list[str]:
    return ["nsenter", "-t", str(holder), "-m", "-n", "-u", "--"]


def _host_run(state: Path, host: Host) -> Path:
    """The host's private /run, as seen from the root namespace."""
    return host_dir(state, host) / "run"


def _start_dbus(state: Path, host: Host, holder: int) -> int:
    rundir = _host_run(state, host) / "dbus"
    rundir.mkdir(exist_ok=True)
    socket = rundir / "system_bus_socket"
    socket.unlink(missing_ok=True)
    pid = spawn([*_enter(holder), "dbus-daemon", "--system", "--nofork", "--nopidfile"],
                host_dir(state, host) / "dbus.log")
    wait_for(lambda: socket.is_socket() or not alive(pid), 30, f"dbus on {host.name}")
    if not alive(pid):
        raise LabError(f"dbus on {host.name} exited: {_tail(host_dir(state, host) / 'dbus.log')}")
    return pid


def firewalld_state(holder: int, timeout: float = 15.0) -> str:
    """'running', 'not running', firewall-cmd's complaint, or 'no answer' when firewall-cmd did not return in time.

    A firewalld still loading its configuration owns its D-Bus name but answers nothing until it is done, and
    firewall-cmd waits for it; on a loaded machine that wait can outlast any one call's timeout.
    """
    try:
        done = run([*_enter(holder), "firewall-cmd", "--state"], check=False, timeout=timeout)
    except LabError:
        return "no answer"
    return (done.stdout or done.stderr).strip()


def _start_firewalld(state: Path, host: Host, holder: int) -> int:
    log = host_dir(state, host) / "firewalld.log"
    # console log: the default (/var/log/firewalld) is shared with the root namespace and every other host
    pid = spawn([*_enter(holder), "firewalld", "--nofork", "--nopid", "--log-target", "console"], log)
    deadline = time.monotonic() + FIREWALLD_TIMEOUT

    def running() -> bool:
        remaining = max(1.0, deadline - time.monotonic())
        return not alive(pid) or firewalld_state(holder, timeout=min(15.0, remaining)) == "running"

    try:
        wait_for(running, FIREWALLD_TIMEOUT, f"firewalld on {host.name}")
    except LabError as exc:
        raise LabError(f"{exc}; its log ends: {_tail(log)}") from exc
    if not alive(pid):
        raise LabError(f"firewalld on {host.name} exited: {_tail(log)}")
    return pid


def _start_cron(state: Path, host: Host, holder: int) -> int:
    """Debian cron in the foreground; it reads the host's overlay /etc/cron.d and keeps its pid file and
    @reboot marker in the host's private /run, so @reboot jobs run once per host start."""
    pidfile = _host_run(state, host) / "crond.pid"
    pidfile.unlink(missing_ok=True)
    (_host_run(state, host) / "crond.reboot").unlink(missing_ok=True)
    log = host_dir(state, host) / "cron.log"
    pid = spawn([*_enter(holder), "cron", "-f", "-L", "15"], log)
    wait_for(lambda: pidfile.exists() or not alive(pid), 30, f"cron on {host.name}")
    if not alive(pid):
        raise LabError(f"cron on {host.name} exited: {_tail(log)}")
    return pid


def _ufw(holder: int, *args: str) -> None:
    run([*_enter(holder), "ufw", "--force", *args], timeout=60)


STARTERS: dict[str, Callable[[Path, Host, int], int]] = {
    "dbus": _start_dbus, "firewalld": _start_firewalld, "cron": _start_cron,
    "squid": lambda state, host, holder: proxies.start_squid(host_dir(state, host), host, holder),
    "apache2": lambda state, host, holder: proxies.start_apache(host_dir(state, host), host, holder)}


def start(state: Path, host: Host, holder: int, name: str) -> int | None:
    """Start one service; returns the daemon's pid (None for ufw, which `ufw --force enable`s the host)."""
    if name in PROXY_SERVICES and host.name != PROXY_SERVICES[name]:
        raise LabError(f"{name} runs on {PROXY_SERVICES[name]} only")
    if name == "ufw":
        _ufw(holder, "enable")
        return None
    return STARTERS[name](state, host, holder)


def stop(state: Path, host: Host, holder: int, name: str, pid: int | None) -> None:
    if name == "ufw":
        _ufw(holder, "disable")
        return
    if name in PROXY_SERVICES:
        proxies.stop(host_dir(state, host), host, pid)
        return
    if pid:
        kill_all([pid], grace=5.0)  # firewalld removes its rules on SIGTERM (CleanupOnExit); give it time
    if pid and alive(pid):
        raise LabError(f"{name} on {host.name} (pid {pid}) did not stop")


def validate(name: str) -> None:
    if name not in SERVICES:
        raise LabError(f"unknown service {name!r}; services: {', '.join(SERVICES)}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-1500:] if log.exists() else ""

