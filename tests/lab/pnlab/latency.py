"""Delay lines: a TUN device in the router, policy routing into it, and delayline.py holding the packets.

Per-agent latency sends the agent's lan<->svc traffic through one; the DNS `slow` fault sends only the agent's
queries to the slow resolver through another (pnlab.resolver).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .faults import TUN_PREFIX
from .netns import ip_batch
from .proc import LabError, alive, kill_all, run, spawn
from .topology import LAN_BRIDGE, ROUTER, SVC_BRIDGE, Host

DELAYLINE = Path(__file__).resolve().parent.parent / "delayline.py"
TABLE_BASE = 100


@dataclass(frozen=True)
class Line:
    """One delay line: its TUN, its routing table, the `ip rule` argvs ({verb} = add/del) and a name for files."""

    dev: str
    table: int
    rules: list[list[str]]
    name: str


def tun_name(agent: Host) -> str:
    return f"{TUN_PREFIX}{agent.short}"[:15]


def _table(index: int) -> int:
    return TABLE_BASE + index


def _pidfile(state: Path, line: Line) -> Path:
    return state / "faults" / f"delayline-{line.name}.pid"


def _agent_line(agent: Host, index: int) -> Line:
    rules = []
    for fam, addr in (("-4", agent.v4[0]), ("-6", agent.v6[0])):
        # Only the hop between the segments goes through the line: out of the lan from the agent, out of svc to it.
        for direction, iif in (("from", LAN_BRIDGE), ("to", SVC_BRIDGE)):
            rules.append([fam, "rule", "{verb}", direction, addr, "iif", iif,
                          "lookup", str(_table(index)), "pref", str(1000 + index)])
    return Line(tun_name(agent), _table(index), rules, agent.name)


def _ip_rules(line: Line, verb: str) -> list[list[str]]:
    return [["ip", "-n", ROUTER, *(verb if arg == "{verb}" else arg for arg in rule)] for rule in line.rules]


def start_line(state: Path, line: Line, delay_ms: float, loss: float) -> None:
    stop_line(state, line)
    dev = line.dev
    ip_batch(ROUTER, [f"tuntap add dev {dev} mode tun", f"link set {dev} txqueuelen 10000 up"])
    log = state / "faults" / f"delayline-{line.name}.log"
    log.parent.mkdir(exist_ok=True)
    log.write_text("")
    pid = spawn(["ip", "netns", "exec", ROUTER, sys.executable, str(DELAYLINE), "--dev", dev,
                 "--delay-ms", str(delay_ms), "--loss", str(loss)], log)
    _pidfile(state, line).write_text(f"{pid}\n")
    deadline = time.monotonic() + 5
    while "ready" not in log.read_text():
        if not alive(pid) or time.monotonic() > deadline:
            raise LabError(f"delay line {line.name} did not start: {log.read_text()[-500:]}")
        time.sleep(0.01)
    ip_batch(ROUTER, [f"route add {net} dev {dev} table {line.table}" for net in ("default", "::/0")])
    for argv in _ip_rules(line, "add"):
        run(argv)


def stop_line(state: Path, line: Line) -> None:
    """Idempotent: removes whatever part of the line exists, so a half-built one clears too."""
    for argv in _ip_rules(line, "del"):
        run(argv, check=False)
    pidfile = _pidfile(state, line)
    if pidfile.exists():
        kill_all([int(pidfile.read_text())])
        pidfile.unlink()
    run(["ip", "-n", ROUTER, "link", "del", line.dev], check=False)


def start(state: Path, agent: Host, index: int, rtt_ms: int, loss: float) -> None:
    start_line(state, _agent_line(agent, index), rtt_ms / 2, loss)


def stop(state: Path, agent: Host, index: int) -> None:
    stop_line(state, _agent_line(agent, index))
