"""The Lab object: builds, changes and removes the namespace lab; the CLI and the pytest fixture both use it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

from . import daemons, hostfs, latency, netns, proxies, resolver, teardown
from . import faults as faultlib
from . import prometheus as prometheuslib
from . import services as servicelib
from . import state as statefile
from .inventory import (
    MANAGED_APACHE_URL,
    MANAGED_SQUID_URL,
    PROXY_443ONLY_URL,
    PROXY_URL,
    ansible_cfg,
    inventory,
    known_hosts,
    lab_vars,
)
from .pki import Pki, make_pki, make_ssh_key
from .proc import LabError, alive, kill_all, run
from .topology import (
    APACHE,
    DNS,
    EPNS,
    EPNS_ROLES,
    ESET_SERVER_NAME,
    ESET_SERVER_PORT,
    MAX_AGENTS,
    PROXY,
    ROUTER,
    ROUTER2,
    SERVER,
    SQUID,
    STATE_DIR,
    Host,
    agent_host,
    canonical,
    lan2_hosts,
    proxy_host,
    role_addrs,
    server_host,
)
from .topology import hosts as all_hosts

UNMANAGED = (EPNS, DNS, PROXY, ROUTER, ROUTER2)


def _quiet(_: str) -> None:
    pass


class Lab:
    """One lab on this machine. `Lab(agents=3).up()` builds it; `Lab.attach()` picks up a running one."""

    def __init__(self, agents: int = 3, state_dir: Path | str = STATE_DIR,
                 progress: Callable[[str], None] = _quiet, wol: bool = False) -> None:
        if not 1 <= agents <= MAX_AGENTS:
            raise ValueError(f"agents must be 1..{MAX_AGENTS}")
        self.state_dir = Path(state_dir)
        self.agent_count = agents
        self._say = progress
        self.pki = Pki(self.state_dir / "pki")
        self.ssh_dir = self.state_dir / "ssh"
        self.wol = wol
        self.hosts: dict[str, Host] = {h.name: h for h in all_hosts(agents, wol)}
        self.agents: list[str] = [agent_host(i).name for i in range(1, agents + 1)]
        # wol=True: a second agent subnet (lan2, 198.18.2.0/24) behind pn-router2; these agents are in the
        # inventory group wol_agents only, so plays on `agents` do not change.
        self.lan2_agents: list[str] = [h.name for h in lan2_hosts(wol)]
        self.server = SERVER
        self._previous_handlers: dict[int, Any] = {}

    # -- paths and addresses the tests use -------------------------------------------------------------
    @property
    def inventory(self) -> Path:
        return self.state_dir / "inventory.ini"

    @property
    def ansible_cfg(self) -> Path:
        return self.state_dir / "ansible.cfg"

    @property
    def ca_path(self) -> Path:
        return self.pki.ca

    @property
    def intercept_ca_path(self) -> Path:
        return self.pki.intercept_ca

    @property
    def client_cert(self) -> Path:
        return self.pki.cert("client")

    @property
    def client_key(self) -> Path:
        return self.pki.key("client")

    @property
    def ssh_key(self) -> Path:
        return self.pki.ssh_key

    @property
    def known_hosts(self) -> Path:
        return self.ssh_dir / "known_hosts"

    @property
    def eset_server_ca_path(self) -> Path:
        """The ESET PROTECT server's CA (the stand-in on pn-server, port eset_server_port, signs with it)."""
        return self.pki.eset_server_ca

    eset_server = ESET_SERVER_NAME
    eset_server_port = ESET_SERVER_PORT
    proxy_url = PROXY_URL
    proxy_443only_url = PROXY_443ONLY_URL

    @property
    def addresses(self) -> dict[str, dict[str, str]]:
        """{'pn-agent1': {'ipv4': ..., 'ipv6': ...}, ..., 'broker': ..., 'mtls': ..., 'proxy': ...}"""
        out = {name: {"ipv4": h.v4[0], "ipv6": h.v6[0]} for name, h in self.hosts.items() if name not in (EPNS, DNS)}
        out.update({role: dict(zip(("ipv4", "ipv6"), role_addrs(role))) for role in EPNS_ROLES})
        out["proxy"] = {"ipv4": proxy_host().v4[0], "ipv6": proxy_host().v6[0]}
        return out

    managed_proxy_urls: ClassVar[dict[str, str]] = {SQUID: MANAGED_SQUID_URL, APACHE: MANAGED_APACHE_URL}

    @property
    def vars(self) -> dict[str, str]:
        return lab_vars(self.pki, self.ssh_dir)

    # -- lifecycle -------------------------------------------------------------------------------------
    @classmethod
    def attach(cls, state_dir: Path | str = STATE_DIR, progress: Callable[[str], None] = _quiet) -> Lab:
        data = statefile.load(Path(state_dir))
        if not data:
            raise LabError(f"no lab is up (no {statefile.path(Path(state_dir))})")
        return cls(agents=data["agents"], state_dir=state_dir, progress=progress, wol=bool(data.get("wol")))

    def __enter__(self) -> Lab:
        self._trap_signals()
        return self.up()

    def __exit__(self, *exc: object) -> None:
        try:
            self.down()
        finally:
            self._restore_signals()

    def _trap_signals(self) -> None:
        """SIGTERM/SIGHUP unwind like Ctrl-C, so every `finally` that tears the lab down still runs."""
        if threading.current_thread() is not threading.main_thread():
            return

        def interrupt(signum: int, _frame: object) -> None:
            raise KeyboardInterrupt(f"signal {signum}")

        for sig in (signal.SIGTERM, signal.SIGHUP):
            self._previous_handlers[sig] = signal.signal(sig, interrupt)

    def _restore_signals(self) -> None:
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)
        self._previous_handlers.clear()

    def up(self) -> Lab:
        started = time.monotonic()
        trapped = not self._previous_handlers
        if trapped:
            self._trap_signals()
        try:
            leftovers = teardown.down(self.state_dir)
            if leftovers:
                self._say(f"cleaned leftovers: {', '.join(leftovers)}")
            self._build()
        except BaseException:
            self._say("build failed: tearing down")
            self.down()
            raise
        finally:
            if trapped:
                self._restore_signals()
        self._say(f"lab up in {time.monotonic() - started:.2f}s: {len(self.agents)} agents, inventory {self.inventory}")
        return self

    def _build(self) -> None:
        self.state_dir.mkdir(mode=0o755, parents=True)
        managed = [h for h in self.hosts.values() if h.managed]
        with ThreadPoolExecutor(4) as pool:
            pki_job = pool.submit(make_pki, self.pki)
            key_jobs = {h.name: pool.submit(make_ssh_key, hostfs.host_dir(self.state_dir, h) / "ssh_host_ed25519_key",
                                            h.name) for h in managed}
            client_job = pool.submit(make_ssh_key, self.pki.ssh_key, "pnlab-controller")
            self._say("namespaces and links")
            netns.build(list(self.hosts.values()))
            self._apply_rules({})
            pki_job.result()
            host_keys = {name: job.result() for name, job in key_jobs.items()}
            (self.ssh_dir / "authorized_keys").write_text(client_job.result() + "\n")
            self._say("host views: overlay /etc, private /run, trust store")
            for h in managed:
                hostfs.prepare_upper(self.state_dir, h, [self.ca_path])
                proxies.prepare(hostfs.host_dir(self.state_dir, h), h)
            holders = dict(zip((h.name for h in managed), pool.map(lambda h: hostfs.start_holder(self.state_dir, h),
                                                                    managed)))
            list(pool.map(lambda h: hostfs.mount_views(self.state_dir, h, holders[h.name]), managed))
        self._say("daemons: mosquitto, hostile peers, squid, dnsmasq, sshd, managed proxies")
        pids = {"mosquitto": daemons.start_mosquitto(self.state_dir, self.pki),
                "hostile": daemons.start_hostile(self.state_dir, self.pki),
                "squid": daemons.start_squid(self.state_dir),
                "protect-server": daemons.start_protect_server(self.state_dir, self.pki),
                **resolver.start(self.state_dir)}
        for h in managed:
            pids[f"sshd-{h.name}"] = daemons.start_sshd(self.state_dir, h, holders[h.name],
                                                        self.ssh_dir / "authorized_keys")
        # The managed proxies start alongside (each waits for its own port) and are recorded as services,
        # so tests stop and start them with stop_service/start_service.
        with ThreadPoolExecutor(2) as pool:
            jobs = {(host, name): pool.submit(servicelib.start, self.state_dir, self.hosts[host], holders[host], name)
                    for name, host in servicelib.PROXY_SERVICES.items()}
            services = {host: {name: job.result()} for (host, name), job in jobs.items()}
        statefile.save(self.state_dir, {"agents": self.agent_count, "wol": self.wol,
                                        "holders": holders, "pids": pids, "faults": {},
                                        "services": services})
        self._write_ansible_files([(h, host_keys[h.name]) for h in managed])
        daemons.wait_mosquitto(pids["mosquitto"])
        daemons.wait_hostile(pids["hostile"])
        daemons.wait_protect_server(pids["protect-server"])
        for h in managed:
            daemons.wait_sshd(h, pids[f"sshd-{h.name}"])
        daemons.wait_squid(pids["squid"], self.state_dir)
        resolver.wait(pids)

    def _write_ansible_files(self, host_keys: Sequence[tuple[Host, str]]) -> None:
        (self.ssh_dir / "cp").mkdir(mode=0o700, exist_ok=True)
        self.known_hosts.write_text(known_hosts(host_keys))
        agents = [self.hosts[a] for a in self.agents]
        self.inventory.write_text(inventory(agents, [server_host()], self.vars,
                                            [self.hosts[SQUID], self.hosts[APACHE]],
                                            [self.hosts[a] for a in self.lan2_agents]))
        self.ansible_cfg.write_text(ansible_cfg(self.inventory))

    def down(self) -> None:
        started = time.monotonic()
        removed = teardown.down(self.state_dir)
        note = f" (removed {len(removed)} items)" if removed else ""
        self._say(f"lab down in {time.monotonic() - started:.2f}s{note}")

    @property
    def is_up(self) -> bool:
        """True while this lab's state file exists, i.e. between up() and down()."""
        return bool(statefile.load(self.state_dir))

    # -- running things inside hosts -------------------------------------------------------------------
    def _data(self) -> dict[str, Any]:
        data = statefile.load(self.state_dir)
        if not data:
            raise LabError("the lab is not up")
        return data

    def holder(self, host: str) -> int:
        return int(self._data()["holders"][canonical(host)])

    def exec_argv(self, host: str, argv: Sequence[str]) -> list[str]:
        name = canonical(host)
        if name in UNMANAGED:
            return ["ip", "netns", "exec", name, *argv]
        if name not in self.hosts:
            raise LabError(f"unknown host {host!r}; hosts: {', '.join([*self.hosts, ROUTER])}")
        return ["nsenter", "-t", str(self.holder(name)), "-m", "-n", "-u", "--", *argv]

    def run(self, host: str, argv: Sequence[str], timeout: float = 30.0, check: bool = False,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run argv in host's network, mount and UTS namespaces. Raises subprocess.TimeoutExpired on timeout."""
        return subprocess.run(self.exec_argv(host, argv), capture_output=True, text=True, timeout=timeout,
                              check=check, input=input, stdin=None if input is not None else subprocess.DEVNULL)

    def directed_broadcast(self, on: bool) -> None:
        """wol=True only: let pn-router2 forward directed broadcasts (to 198.18.2.255) into lan2, or not (default)."""
        if not self.wol:
            raise LabError("directed_broadcast needs Lab(wol=True) (the lan2 subnet behind pn-router2)")
        netns.bc_forwarding(on)
        self._say(f"{ROUTER2}: directed-broadcast forwarding {'on' if on else 'off'}")

    # -- faults ----------------------------------------------------------------------------------------
    def _agent(self, agent: str) -> Host:
        name = canonical(agent)
        if name not in self.agents:
            raise LabError(f"unknown agent {agent!r}; agents: {', '.join(self.agents)}")
        return self.hosts[name]

    def _apply_rules(self, faults: faultlib.Faults) -> None:
        rules = self.state_dir / "faults.nft"
        rules.write_text(faultlib.render(faults, self.hosts))
        run(["ip", "netns", "exec", ROUTER, "nft", "-f", str(rules)])
        server_rules = self.state_dir / "faults-server.nft"
        server_rules.write_text(faultlib.render_server(faults, self.hosts))
        run(["ip", "netns", "exec", SERVER, "nft", "-f", str(server_rules)])

    def fault(self, agent: str, kind: str, **opts: Any) -> None:
        """kind and options: block(port, to='any'|'epns'|'proxy'|'server', action='drop'|'reject'|'reject-icmp'|
        'reject-icmp4:TYPE'|'reject-icmp6:TYPE', family='any'|'ipv4'|'ipv6'),
        broker-down, dns(mode=timeout|aaaa-timeout|nxdomain|servfail|a-only|aaaa-only|slow|sinkhole-null|
        sinkhole-page, seconds=2.0 for slow), idle-cut(seconds, reset=False), intercept(trusted=False), mtls,
        hostile(mode=one of topology.HOSTILE_PORTS), latency(rtt_ms, loss=0.0)."""
        host = self._agent(agent)
        options = faultlib.validate(kind, opts)
        with statefile.locked(self.state_dir):
            data = self._data()
            kinds = data["faults"].setdefault(host.name, {})
            if kind == "block":
                rules = [r for r in kinds.get("block", [])
                         if (r["port"], r["to"], r.get("family", "any"))
                         != (options["port"], options["to"], options["family"])]
                kinds["block"] = [*rules, options]
            else:
                kinds[kind] = options
            try:
                self._switch_on(host, kind, options)
                self._apply_rules(data["faults"])
            except BaseException:
                self._switch_off(host, kind)  # a half-applied switch would outlive its record
                raise
            statefile.save(self.state_dir, data)
        self._say(f"{host.name}: {kind} on {options or ''}".rstrip())

    def _switch_on(self, host: Host, kind: str, options: dict[str, Any]) -> None:
        if kind == "dns":
            self._dns_line(host, options)
        elif kind == "intercept":
            local = [self.pki.interceptor_ca(options["ca"])] if options["trusted"] else []
            hostfs.set_trust(self.holder(host.name), self.ca_path, local)
        elif kind == "latency":
            latency.start(self.state_dir, host, self.agents.index(host.name) + 1, options["rtt_ms"], options["loss"])

    def _switch_off(self, host: Host, kind: str) -> None:
        if kind == "dns":
            resolver.slow_off(self.state_dir, host, self.agents.index(host.name) + 1)
        elif kind == "intercept":
            hostfs.set_trust(self.holder(host.name), self.ca_path, [])
        elif kind == "latency":
            latency.stop(self.state_dir, host, self.agents.index(host.name) + 1)

    def _dns_line(self, host: Host, options: dict[str, Any]) -> None:
        """The slow resolver's delay line is the agent's own; any other mode has none (a mode change removes it)."""
        index = self.agents.index(host.name) + 1
        if options["mode"] == "slow":
            resolver.slow_on(self.state_dir, host, index, options["seconds"])
        else:
            resolver.slow_off(self.state_dir, host, index)

    def clear(self, agent: str, kind: str | None = None) -> None:
        host = self._agent(agent)
        if kind is not None and kind not in faultlib.KINDS:
            raise LabError(f"unknown fault {kind!r}")
        with statefile.locked(self.state_dir):
            data = self._data()
            kinds = data["faults"].get(host.name, {})
            for k in [k for k in list(kinds) if kind in (None, k)]:
                self._switch_off(host, k)
                del kinds[k]
            if not kinds:
                data["faults"].pop(host.name, None)
            self._apply_rules(data["faults"])
            statefile.save(self.state_dir, data)
        self._say(f"{host.name}: cleared {kind or 'all faults'}")

    def clear_all(self) -> None:
        for agent in list(self._data()["faults"]):
            self.clear(agent)

    def reset(self) -> None:
        """Back to the healthy lab: no fault on any agent and the broker running."""
        self.clear_all()
        self.broker("start")

    def faults(self) -> faultlib.Faults:
        return self._data()["faults"]

    # -- the broker --------------------------------------------------------------------------------------
    def broker(self, action: str) -> None:
        """stop: every broker variant (.10-.12) refuses; start: back to normal."""
        with statefile.locked(self.state_dir):
            data = self._data()
            pid = data["pids"].get("mosquitto")
            if action == "stop":
                if pid:
                    kill_all([pid])
                data["pids"]["mosquitto"] = None
            elif action == "start":
                if not (pid and alive(pid)):
                    pid = daemons.start_mosquitto(self.state_dir, self.pki)
                    daemons.wait_mosquitto(pid)
                    data["pids"]["mosquitto"] = pid
            else:
                raise LabError("broker action must be stop or start")
            statefile.save(self.state_dir, data)
        self._say(f"broker {action}")

    # -- per-host services ------------------------------------------------------------------------------
    def _managed(self, host: str) -> Host:
        name = canonical(host)
        if name not in self.hosts or not self.hosts[name].managed:
            raise LabError(f"services run on managed hosts (agents, server, managed proxies) only, not {host!r}")
        return self.hosts[name]

    def services(self, host: str) -> dict[str, int | None]:
        """Services started on host: {'dbus': pid, 'firewalld': pid, 'cron': pid, 'ufw': None}."""
        return dict(self._data().get("services", {}).get(self._managed(host).name, {}))

    def start_service(self, host: str, name: str) -> int | None:
        """Start dbus, firewalld (starts dbus first; returns once `firewall-cmd --state` says running), cron
        (`cron -f`, reads the host's overlay /etc/cron.d) or ufw (`ufw --force enable`: no process) inside host's
        namespaces. Idempotent; returns the daemon's pid (None for ufw)."""
        servicelib.validate(name)
        target = self._managed(host)
        for needed in servicelib.REQUIRES.get(name, ()):
            self.start_service(target.name, needed)
        with statefile.locked(self.state_dir):
            data = self._data()
            started = data.setdefault("services", {}).setdefault(target.name, {})
            pid: int | None = started.get(name)
            if name in started and (name == "ufw" or (pid and alive(pid))):
                return pid
            began = time.monotonic()
            pid = servicelib.start(self.state_dir, target, self.holder(target.name), name)
            started[name] = pid
            statefile.save(self.state_dir, data)
        suffix = f" (pid {pid})" if pid else ""
        self._say(f"{target.name}: {name} started in {time.monotonic() - began:.2f}s{suffix}")
        return pid

    def stop_service(self, host: str, name: str) -> None:
        """Stop a service started with start_service (and whatever needs it: dbus stops firewalld first).
        ufw: `ufw --force disable`. Idempotent."""
        servicelib.validate(name)
        target = self._managed(host)
        for dependent, needs in servicelib.REQUIRES.items():
            if name in needs:
                self.stop_service(target.name, dependent)
        with statefile.locked(self.state_dir):
            data = self._data()
            started = data.setdefault("services", {}).setdefault(target.name, {})
            if name not in started:
                return
            servicelib.stop(self.state_dir, target, self.holder(target.name), name, started[name])
            del started[name]
            if not started:
                data["services"].pop(target.name)
            statefile.save(self.state_dir, data)
        self._say(f"{target.name}: {name} stopped")

    # -- Prometheus and node_exporter (the monitor's tests) ---------------------------------------------
    def start_prometheus(self, agent: str, textfile_dir: str, rule_files: Sequence[Path | str] = (),
                         scrape_seconds: float = 1.0) -> prometheuslib.Monitoring:
        """Debian's node_exporter (textfile collector on textfile_dir, as the agent sees it) and Prometheus
        scraping it every scrape_seconds with rule_files loaded, both in the agent's namespaces; `down` ends them."""
        host = self._agent(agent)
        monitoring = prometheuslib.start(self.state_dir, host, self.holder(host.name), textfile_dir, rule_files,
                                         scrape_seconds)
        with statefile.locked(self.state_dir):
            data = self._data()
            data["pids"][f"prometheus-{host.name}"] = monitoring.prometheus_pid
            data["pids"][f"node-exporter-{host.name}"] = monitoring.node_exporter_pid
            statefile.save(self.state_dir, data)
        self._say(f"{host.name}: node_exporter and Prometheus at {monitoring.url}")
        return monitoring

    def stop_prometheus(self, monitoring: prometheuslib.Monitoring) -> None:
        monitoring.stop()
        with statefile.locked(self.state_dir):
            data = self._data()
            for key in (f"prometheus-{monitoring.host.name}", f"node-exporter-{monitoring.host.name}"):
                data["pids"].pop(key, None)
            statefile.save(self.state_dir, data)

    def status(self) -> dict[str, Any]:
        data = statefile.load(self.state_dir)
        namespaces = teardown.lab_namespaces()
        if not data:
            return {"up": False, "namespaces": namespaces}
        services = {f"{name}-{host}": pid for host, started in data.get("services", {}).items()
                    for name, pid in started.items() if name in servicelib.DAEMONS}
        processes = {name: bool(pid and alive(pid)) for name, pid in {**data["pids"], **{
            f"holder-{k}": v for k, v in data["holders"].items()}, **services}.items()}
        return {"up": True, "agents": self.agents, "namespaces": namespaces, "processes": processes,
                "faults": data["faults"], "services": data.get("services", {}), "inventory": str(self.inventory)}


def require_root() -> None:
    if os.geteuid() != 0:
        sys.exit("the lab needs root (network namespaces, mounts)")
