"""Namespaces, bridges, veths and addresses: the wiring, nothing that runs."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from .proc import run
from .topology import (
    CONTROLLER_LINK,
    CONTROLLER_V4,
    CONTROLLER_V6,
    EPNS,
    LAN2_BRIDGE,
    LAN2_GW_V4,
    LAN2_GW_V6,
    LAN2_V4_NET,
    LAN2_V6_NET,
    LAN_BRIDGE,
    LAN_GW_V4,
    LAN_GW_V6,
    ROUTER,
    ROUTER2,
    ROUTER2_LAN_V4,
    ROUTER2_LAN_V6,
    ROUTER2_PORT,
    ROUTER2_UPLINK,
    SVC_BRIDGE,
    SVC_GW_V4,
    SVC_GW_V6,
    Host,
    managed_proxy_hosts,
)

# DAD would leave fresh v6 addresses tentative for a second; the lab has no duplicates to detect.
COMMON_SYSCTLS = ["net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
                  "net.ipv6.conf.all.accept_ra=0", "net.ipv6.conf.default.accept_ra=0"]
ROUTER_SYSCTLS = ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
                  "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
                  # with loose pickup off, a packet of a flow conntrack forgot is 'invalid': idle-cut relies on it
                  "net.netfilter.nf_conntrack_tcp_loose=0"]
EPNS_SYSCTLS = ["net.ipv4.ip_unprivileged_port_start=0"]


def ip_batch(netns: str | None, lines: Sequence[str]) -> None:
    argv = ["ip", "-b", "-"] if netns is None else ["ip", "-n", netns, "-b", "-"]
    run(argv, input="\n".join(lines) + "\n")


def sysctl(netns: str, settings: Sequence[str]) -> None:
    run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w", *settings])


def _router_lines() -> list[str]:
    lines = ["link set lo up"]
    for bridge, v4, v6 in ((LAN_BRIDGE, LAN_GW_V4, LAN_GW_V6), (SVC_BRIDGE, SVC_GW_V4, SVC_GW_V6)):
        lines += [f"link add {bridge} type bridge forward_delay 0 stp_state 0",
                  f"addr add {v4}/24 dev {bridge}", f"addr add {v6}/64 dev {bridge} nodad",
                  f"link set {bridge} up"]
    return lines


def _port_lines(host: Host) -> list[str]:
    return [f"link add {host.router_port} type veth peer name eth0 netns {host.name}",
            f"link set {host.router_port} master {host.segment}", f"link set {host.router_port} up"]


def _host_lines(host: Host) -> list[str]:
    gw4, gw6 = {LAN_BRIDGE: (LAN_GW_V4, LAN_GW_V6), LAN2_BRIDGE: (LAN2_GW_V4, LAN2_GW_V6)}.get(
        host.segment, (SVC_GW_V4, SVC_GW_V6))
    lines = ["link set lo up"]
    lines += [f"addr add {a}/24 dev eth0" for a in host.v4]
    lines += [f"addr add {a}/64 dev eth0 nodad" for a in host.v6]
    return [*lines, "link set eth0 up", f"route add default via {gw4}", f"route add ::/0 via {gw6}"]


def _prepare_host(host: Host) -> None:
    sysctl(host.name, COMMON_SYSCTLS + (EPNS_SYSCTLS if host.name == EPNS else []))


def bc_forwarding(on: bool) -> None:
    """Forwarding of directed broadcasts by pn-router2 into lan2 (Linux >= 4.19: all AND the ingress interface)."""
    value = int(on)
    sysctl(ROUTER2, [f"net.ipv4.conf.all.bc_forwarding={value}",
                     f"net.ipv4.conf.{ROUTER2_UPLINK}.bc_forwarding={value}"])


def _router2(lan2: Sequence[Host]) -> None:
    """pn-router2: uplink on br-lan, bridge br-lan2 for the lan2 agents, default route to pn-router."""
    sysctl(ROUTER2, COMMON_SYSCTLS + ROUTER_SYSCTLS[:4])
    ip_batch(ROUTER2, ["link set lo up",
                       f"addr add {ROUTER2_LAN_V4}/24 dev {ROUTER2_UPLINK}",
                       f"addr add {ROUTER2_LAN_V6}/64 dev {ROUTER2_UPLINK} nodad", f"link set {ROUTER2_UPLINK} up",
                       f"link add {LAN2_BRIDGE} type bridge forward_delay 0 stp_state 0",
                       f"addr add {LAN2_GW_V4}/24 dev {LAN2_BRIDGE}",
                       f"addr add {LAN2_GW_V6}/64 dev {LAN2_BRIDGE} nodad",
                       f"link set {LAN2_BRIDGE} up",
                       f"route add default via {LAN_GW_V4}", f"route add ::/0 via {LAN_GW_V6}",
                       *(line for h in lan2 for line in _port_lines(h))])


def build(all_hosts: Sequence[Host]) -> None:
    lan2 = [h for h in all_hosts if h.segment == LAN2_BRIDGE]
    main = [h for h in all_hosts if h.segment != LAN2_BRIDGE]
    for name in [ROUTER, *([ROUTER2] if lan2 else []), *(h.name for h in all_hosts)]:
        run(["ip", "netns", "add", name])
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(_prepare_host, all_hosts))
    sysctl(ROUTER, COMMON_SYSCTLS + ROUTER_SYSCTLS)
    uplink = [f"link add {ROUTER2_PORT} type veth peer name {ROUTER2_UPLINK} netns {ROUTER2}",
              f"link set {ROUTER2_PORT} master {LAN_BRIDGE}", f"link set {ROUTER2_PORT} up",
              f"route add {LAN2_V4_NET} via {ROUTER2_LAN_V4}", f"route add {LAN2_V6_NET} via {ROUTER2_LAN_V6}"]
    ip_batch(ROUTER, _router_lines() + [line for h in main for line in _port_lines(h)]
             + [f"link add v-ctl type veth peer name {CONTROLLER_LINK} netns {os.getpid()}",
                f"link set v-ctl master {LAN_BRIDGE}", "link set v-ctl up"] + (uplink[:3] if lan2 else []))
    if lan2:
        _router2(lan2)
        ip_batch(ROUTER, uplink[3:])
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda h: ip_batch(h.name, _host_lines(h)), all_hosts))
    # The controller side gets its on-link /24 and /64, plus host routes to the managed proxies (Ansible reaches
    # their sshd on the svc segment): no route leads anywhere else, and all of them go with the link.
    proxies = [h for h in managed_proxy_hosts() if h in all_hosts]
    ip_batch(None, [f"addr add {CONTROLLER_V4}/24 dev {CONTROLLER_LINK}",
                    f"addr add {CONTROLLER_V6}/64 dev {CONTROLLER_LINK} nodad",
                    f"link set {CONTROLLER_LINK} up",
                    *(f"route add {a}/32 via {LAN_GW_V4} dev {CONTROLLER_LINK}" for h in proxies for a in h.v4),
                    *(f"route add {a}/128 via {LAN_GW_V6} dev {CONTROLLER_LINK}" for h in proxies for a in h.v6),
                    # lan2 (Lab(wol=True)): Ansible reaches its agents through pn-router2 directly
                    *([f"route add {LAN2_V4_NET} via {ROUTER2_LAN_V4} dev {CONTROLLER_LINK}",
                       f"route add {LAN2_V6_NET} via {ROUTER2_LAN_V6} dev {CONTROLLER_LINK}"] if lan2 else [])])
