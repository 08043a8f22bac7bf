"""The lab's DNS: Debian's dnsmasq in pn-dns, one instance per DNS fault mode on its own address pair.

Agents and the server ask the healthy instance (resolv.conf). A `dns` fault makes the router DNAT that agent's
port-53 traffic to the instance of the mode (or drop it, for `timeout`); `slow` also sends the agent's queries to
its instance through a delay line, so the answer is real and late. Nothing here fakes a resolver's answer.
"""
from __future__ import annotations

from pathlib import Path

from . import latency
from .proc import spawn, wait_listening
from .topology import (
    DNS,
    DNS_MODES,
    DNS_PORT,
    EPNS_NAME,
    LAN_BRIDGE,
    Host,
    block_page_addrs,
    resolver_addrs,
    role_addrs,
)

# A trust anchor no real root key matches: the validating instance finds the (unsigned) upstream answer bogus
# and says SERVFAIL, as a DNSSEC-validating resolver does for a broken zone.
BOGUS_ROOT_ANCHOR = ".,12345,8,2," + "0" * 64
SLOW_TABLE_BASE = 200  # routing tables of the per-agent DNS delay lines (latency uses 100 + index)


def _records(mode: str) -> list[str]:
    v4, v6 = role_addrs("broker")
    if mode in ("healthy", "slow"):
        return [f"--host-record={EPNS_NAME},{v4},{v6}"]
    if mode == "a-only":
        return [f"--host-record={EPNS_NAME},{v4}"]
    if mode == "aaaa-only":
        return [f"--host-record={EPNS_NAME},{v6}"]
    if mode == "sinkhole-null":
        return [f"--address=/{EPNS_NAME}/#"]  # dnsmasq's own syntax for 0.0.0.0 and ::
    if mode == "sinkhole-page":
        return [f"--address=/{EPNS_NAME}/{a}" for a in block_page_addrs()]
    if mode == "servfail":
        return ["--dnssec", f"--trust-anchor={BOGUS_ROOT_ANCHOR}", f"--server={resolver_addrs()[0]}"]
    return []  # nxdomain: the catch-all below answers NXDOMAIN for every name


def argv(state: Path, mode: str) -> list[str]:
    v4, v6 = resolver_addrs(mode)
    catch_all = [] if mode == "servfail" else ["--address=/#/"]  # NXDOMAIN for any other name, not REFUSED
    return ["ip", "netns", "exec", DNS, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
            "--no-hosts", "--bind-interfaces", f"--listen-address={v4}", f"--listen-address={v6}",
            "--except-interface=lo", "--user=nobody", "--pid-file=", "--log-queries",
            f"--log-facility={log_path(state, mode)}", *_records(mode), *catch_all]


def log_path(state: Path, mode: str) -> Path:
    return state / "dns" / f"dnsmasq-{mode}.log"


def start(state: Path) -> dict[str, int]:
    (state / "dns").mkdir(exist_ok=True)
    return {f"dnsmasq-{mode}": spawn(argv(state, mode), state / "dns" / f"dnsmasq-{mode}.out") for mode in DNS_MODES}


def wait(pids: dict[str, int]) -> None:
    for mode in DNS_MODES:
        wait_listening(pids[f"dnsmasq-{mode}"], [(a, DNS_PORT) for a in resolver_addrs(mode)], 30, f"dnsmasq {mode}")


def _slow_line(agent: Host, index: int) -> latency.Line:
    v4, v6 = resolver_addrs("slow")
    rules = [[fam, "rule", "{verb}", "from", src, "to", dst, "iif", LAN_BRIDGE, "lookup", str(SLOW_TABLE_BASE + index),
              "pref", str(900 + index)] for fam, src, dst in (("-4", agent.v4[0], v4), ("-6", agent.v6[0], v6))]
    return latency.Line(f"{latency.TUN_PREFIX}dns{index}", SLOW_TABLE_BASE + index, rules, f"dns-{agent.name}")


def slow_on(state: Path, agent: Host, index: int, seconds: float) -> None:
    """Only the agent's queries pass the line (delayed by `seconds`); the answers come back at once."""
    latency.start_line(state, _slow_line(agent, index), seconds * 1000, 0.0)


def slow_off(state: Path, agent: Host, index: int) -> None:
    latency.stop_line(state, _slow_line(agent, index))

