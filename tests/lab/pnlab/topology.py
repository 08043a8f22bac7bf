"""The lab's address plan: every name and address lives here and nowhere else."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

STATE_DIR = Path("/run/pnlab")
PREFIX = "pn-"
ROUTER = "pn-router"
SERVER = "pn-server"
EPNS = "pn-epns"
PROXY = "pn-proxy"
SQUID = "pn-squid"  # managed proxy hosts: the proxy_connect_ports module configures these
APACHE = "pn-apache"
DNS = "pn-dns"  # the lab's resolver: one dnsmasq per DNS fault mode, each on its own address pair
CONTROLLER_LINK = "pnlab0"
LAN_BRIDGE = "br-lan"
SVC_BRIDGE = "br-svc"
EPNS_NAME = "epns.eset.com"
MAX_AGENTS = 40

# The optional second agent subnet (Lab(wol=True)): lan2 behind its own router, pn-router2, whose uplink sits on
# br-lan. Directed broadcasts to 198.18.2.255 cross it only with bc_forwarding on (off by default, as on Linux).
ROUTER2 = "pn-router2"
LAN2_BRIDGE = "br-lan2"
ROUTER2_UPLINK = "up0"            # pn-router2's leg on br-lan (its peer in pn-router is v-router2)
ROUTER2_PORT = "v-router2"
ROUTER2_LAN_V4, ROUTER2_LAN_V6 = "198.18.0.253", "2001:db8::253"
LAN2_GW_V4, LAN2_GW_V6 = "198.18.2.254", "2001:db8:0:2::254"
LAN2_V4_NET, LAN2_V6_NET = "198.18.2.0/24", "2001:db8:0:2::/64"
LAN2_AGENTS = 1

CONTROLLER_V4, CONTROLLER_V6 = "198.18.0.1", "2001:db8::1"
LAN_GW_V4, LAN_GW_V6 = "198.18.0.254", "2001:db8::254"
SVC_GW_V4, SVC_GW_V6 = "198.18.1.254", "2001:db8:0:1::254"
LAN_V4_NET, LAN_V6_NET = "198.18.0.0/24", "2001:db8::/64"
SVC_V4_NET, SVC_V6_NET = "198.18.1.0/24", "2001:db8:0:1::/64"
LAB_V4_NET, LAB_V6_NET = "198.18.0.0/15", "2001:db8::/32"

# One address pair per role on the svc segment; the last octet doubles as the v6 suffix.
EPNS_ROLES = {"broker": 10, "mtls": 11, "intercept": 12, "hostile": 13, "intercept-corp": 14, "intercept-forti": 15}
PROXY_SUFFIX = 20
# Managed proxies (own /etc, sshd): Debian's squid and Apache httpd, each starting with CONNECT to 443 only.
MANAGED_PROXIES = {SQUID: 21, APACHE: 22}
MANAGED_PROXY_PORT = 3128
CLOSED_PORT = 1  # nothing listens here on pn-epns, so a SYN gets a real RST
HOSTILE_PORTS = {"garbage-after-tls": 8883, "silent-after-tls": 443, "not-tls": 9000,
                 # the genuine broker certificate, a client certificate requested, then no proof of a refusal
                 "cert-then-reset": 8884, "cert-then-close": 8885, "tls12-cert-alert": 8886}
SLOW_PROXY_PORT, GARBAGE_PROXY_PORT = 3130, 3131
EPNS_PORTS = (8883, 443)
# The ESET PROTECT server's agent port: a TLS stand-in on pn-server (protect_server.py), the name agents use for it.
ESET_SERVER_PORT = 2222
ESET_SERVER_NAME = "server.lab"
# The resolver every agent and the server use (resolv.conf), and one instance per DNS fault mode; `timeout` and
# `aaaa-timeout` have no instance (the router drops the agent's DNS traffic, or only its AAAA queries for
# epns.eset.com), `slow` answers like `healthy` through a delay line.
RESOLVER_SUFFIX = 53
DNS_MODES = {"healthy": RESOLVER_SUFFIX, "nxdomain": 54, "servfail": 55, "a-only": 56, "aaaa-only": 57, "slow": 58,
             "sinkhole-null": 59, "sinkhole-page": 60}
DNS_DROP_MODES = ("timeout", "aaaa-timeout")
DNS_FAULT_MODES = (*DNS_DROP_MODES, *(mode for mode in DNS_MODES if mode != "healthy"))
BLOCK_PAGE_SUFFIX = 61  # where the sinkhole-page resolver sends epns.eset.com; nothing listens there
DNS_PORT = 53
PROXY_PORTS = (3128, 3129)


def svc_v4(suffix: int) -> str:
    return f"198.18.1.{suffix}"


def svc_v6(suffix: int) -> str:
    return f"2001:db8:0:1::{suffix}"


@dataclass(frozen=True)
class Host:
    """A namespace that sits on one of the router's bridges."""

    name: str
    v4: tuple[str, ...]
    v6: tuple[str, ...]
    segment: str  # LAN_BRIDGE or SVC_BRIDGE
    managed: bool  # has its own mount namespace, /etc overlay and sshd

    @property
    def short(self) -> str:
        return self.name[len(PREFIX):]

    @property
    def router_port(self) -> str:
        return f"v-{self.short}"[:15]


def agent_name(index: int) -> str:
    return f"{PREFIX}agent{index}"


def agent_host(index: int) -> Host:
    suffix = 10 + index
    return Host(agent_name(index), (f"198.18.0.{suffix}",), (f"2001:db8::{suffix}",), LAN_BRIDGE, True)


def lan2_agent_name(index: int) -> str:
    return f"{PREFIX}lan2agent{index}"


def lan2_agent_host(index: int) -> Host:
    suffix = 10 + index
    return Host(lan2_agent_name(index), (f"198.18.2.{suffix}",), (f"2001:db8:0:2::{suffix}",), LAN2_BRIDGE, True)


def lan2_hosts(wol: bool) -> list[Host]:
    return [lan2_agent_host(i) for i in range(1, LAN2_AGENTS + 1)] if wol else []


def server_host() -> Host:
    return Host(SERVER, ("198.18.0.5",), ("2001:db8::5",), LAN_BRIDGE, True)


def epns_host() -> Host:
    suffixes = sorted(EPNS_ROLES.values())
    return Host(EPNS, tuple(svc_v4(s) for s in suffixes), tuple(svc_v6(s) for s in suffixes), SVC_BRIDGE, False)


def dns_host() -> Host:
    suffixes = sorted([*DNS_MODES.values(), BLOCK_PAGE_SUFFIX])
    return Host(DNS, tuple(svc_v4(s) for s in suffixes), tuple(svc_v6(s) for s in suffixes), SVC_BRIDGE, False)


def resolver_addrs(mode: str = "healthy") -> tuple[str, str]:
    suffix = DNS_MODES[mode]
    return svc_v4(suffix), svc_v6(suffix)


def block_page_addrs() -> tuple[str, str]:
    return svc_v4(BLOCK_PAGE_SUFFIX), svc_v6(BLOCK_PAGE_SUFFIX)


def proxy_host() -> Host:
    return Host(PROXY, (svc_v4(PROXY_SUFFIX),), (svc_v6(PROXY_SUFFIX),), SVC_BRIDGE, False)


def managed_proxy_host(name: str) -> Host:
    suffix = MANAGED_PROXIES[name]
    return Host(name, (svc_v4(suffix),), (svc_v6(suffix),), SVC_BRIDGE, True)


def managed_proxy_hosts() -> list[Host]:
    return [managed_proxy_host(name) for name in MANAGED_PROXIES]


def hosts(agent_count: int, wol: bool = False) -> list[Host]:
    agents = [agent_host(i) for i in range(1, agent_count + 1)]
    return [server_host(), *agents, epns_host(), dns_host(), proxy_host(), *managed_proxy_hosts(), *lan2_hosts(wol)]


def role_addrs(role: str) -> tuple[str, str]:
    suffix = EPNS_ROLES[role]
    return svc_v4(suffix), svc_v6(suffix)


def canonical(name: str) -> str:
    """Accept 'agent1' as well as 'pn-agent1' everywhere a host is named."""
    return name if name.startswith(PREFIX) else PREFIX + name
