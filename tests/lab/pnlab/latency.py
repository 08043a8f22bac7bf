"""Per-agent latency and loss: a TUN device in the router, policy routing into it, and the delay line."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from .faults import TUN_PREFIX
from .netns import ip_batch
from .proc import LabError, alive, kill_all, run, spawn
from .topology import LAN_BRIDGE, ROUTER, SVC_BRIDGE, Host

DELAYLINE = Path(__file__).resolve().parent.parent / "delayline.py"
TABLE_BASE = 100


def tun_name(agent: Host) -> str:
    return f"{TUN_PREFIX}{agent.short}"[:15]


def _table(index: int) -> int:
    return TABLE_BASE + index


def _pidfile(state: Path, agent: Host) -> Path:
    return state / "faults" / f"delayline-{agent.name}.pid"


def _rules(agent: Host, index: int, verb: str) -> list[list[str]]:
    table, argvs = _table(index), []
    for fam, addr in (("-4", agent.v4[0]), ("-6", agent.v6[0])):
        # Only the hop between the segments goes through the line: out of the lan from the agent, out of svc to it.
        for direction, iif in (("from", LAN_BRIDGE), ("to", SVC_BRIDGE)):
            argvs.append(["ip", "-n", ROUTER, fam, "rule", verb, direction, addr, "iif", iif,
                          "lookup", str(table), "pref", str(1000 + index)])
    return argvs


def start(state: Path, agent: Host, index: int, rtt_ms: int, loss: float) -> None:
    stop(state, agent, index)
    dev, table = tun_name(agent), _table(index)
    ip_batch(ROUTER, [f"tuntap add dev {dev} mode tun", f"link set {dev} txqueuelen 10000 up"])
    log = state / "faults" / f"delayline-{agent.name}.log"
    log.parent.mkdir(exist_ok=True)
    log.write_text("")
    pid = spawn(["ip", "netns", "exec", ROUTER, sys.executable, str(DELAYLINE), "--dev", dev,
                 "--delay-ms", str(rtt_ms / 2), "--loss", str(loss)], log)
    _pidfile(state, agent).write_text(f"{pid}\n")
    deadline = time.monotonic() + 5
    while "ready" not in log.read_text():
        if not alive(pid) or time.monotonic() > deadline:
            raise LabError(f"delay line for {agent.name} did not start: {log.read_text()[-500:]}")
        time.sleep(0.01)
    ip_batch(ROUTER, [f"route add default dev {dev} table {table}", f"route add ::/0 dev {dev} table {table}"])
    for argv in _rules(agent, index, "add"):
        run(argv)


def stop(state: Path, agent: Host, index: int) -> None:
    """Idempotent: removes whatever part of the line exists, so a half-built one clears too."""
    for argv in _rules(agent, index, "del"):
        run(argv, check=False)
    pidfile = _pidfile(state, agent)
    if pidfile.exists():
        kill_all([int(pidfile.read_text())])
        pidfile.unlink()
    run(["ip", "-n", ROUTER, "link", "del", tun_name(agent)], check=False)
