"""Fault switches as data, and the router's nftables ruleset rendered from them (pure functions)."""
from __future__ import annotations

from typing import Any

from .configs import interceptor_role
from .pki import INTERCEPTORS
from .topology import (
    CLOSED_PORT,
    DNS_FAULT_MODES,
    DNS_PORT,
    EPNS_NAME,
    EPNS_PORTS,
    EPNS_ROLES,
    HOSTILE_PORTS,
    PROXY_SUFFIX,
    Host,
    resolver_addrs,
    role_addrs,
    server_host,
    svc_v4,
    svc_v6,
)

TABLE = "pnlab_faults"
KINDS = ("block", "broker-down", "dns", "idle-cut", "intercept", "mtls", "hostile", "latency")
# "server" is pn-server, on the agents' own bridge: that traffic is bridged, never routed, and this kernel's bridge
# family cannot reject, so those blocks live in pn-server's own namespace (render_server, SERVER_TABLE), on its
# input hook: the agent sees what a firewall in front of the server gives. "any" means any routed destination.
BLOCK_TARGETS = ("epns", "proxy", "any", "server")
SERVER_TABLE = "pnlab_faults_server"
BLOCK_FAMILIES = ("any", "ipv4", "ipv6")
# Every ICMP / ICMPv6 reject type nft knows, for measuring what each one makes connect() say.
REJECT_ICMP4 = ("net-unreachable", "host-unreachable", "prot-unreachable", "port-unreachable", "net-prohibited",
                "host-prohibited", "admin-prohibited")
REJECT_ICMP6 = ("no-route", "admin-prohibited", "addr-unreachable", "port-unreachable", "policy-fail", "reject-route")
# action -> (nft verdict, the only family it applies to or None for both)
BLOCK_ACTIONS: dict[str, tuple[str, str | None]] = {
    "drop": ("drop", None), "reject": ("reject with tcp reset", None),
    "reject-icmp": ("reject with icmpx type admin-prohibited", None),
    **{f"reject-icmp4:{k}": (f"reject with icmp type {k}", "ipv4") for k in REJECT_ICMP4},
    **{f"reject-icmp6:{k}": (f"reject with icmpv6 type {k}", "ipv6") for k in REJECT_ICMP6},
}
# When several redirections are on at once the most disruptive wins; the order is documented in the README.
DNAT_PRECEDENCE = ("broker-down", "hostile", "mtls", "intercept")
TUN_PREFIX = "pnd-"
DEFAULT_SLOW_SECONDS = 2.0  # below the lab's resolv.conf timeout (3 s): glibc sees a slow answer, not none

Faults = dict[str, dict[str, Any]]  # agent -> kind -> options (block: a list of rules)


def validate(kind: str, opts: dict[str, Any]) -> dict[str, Any]:
    """Normalise options so the CLI and the Python API store exactly the same thing."""
    if kind not in KINDS:
        raise ValueError(f"unknown fault {kind!r}; known: {', '.join(KINDS)}")
    if kind == "block":
        return _block_rule(opts)
    if kind == "idle-cut":
        seconds = int(opts["seconds"])
        if seconds < 1:
            raise ValueError("idle-cut: seconds must be >= 1")
        return {"seconds": seconds, "reset": bool(opts.get("reset", False))}
    if kind == "intercept":
        which = opts.get("ca") or "intercept"
        if which not in INTERCEPTORS:
            raise ValueError(f"intercept: ca must be one of {tuple(INTERCEPTORS)}")
        return {"trusted": bool(opts.get("trusted", False)), "ca": which}
    if kind == "hostile":
        if opts.get("mode") not in HOSTILE_PORTS:
            raise ValueError(f"hostile: mode must be one of {tuple(HOSTILE_PORTS)}")
        return {"mode": opts["mode"]}
    if kind == "dns":
        return _dns_options(opts)
    if kind == "latency":
        rtt, loss = int(opts["rtt_ms"]), float(opts.get("loss") or 0.0)
        if rtt < 0 or not 0 <= loss <= 100:
            raise ValueError("latency: rtt_ms >= 0 and 0 <= loss <= 100")
        return {"rtt_ms": rtt, "loss": loss}
    return {}


def _block_rule(opts: dict[str, Any]) -> dict[str, Any]:
    rule = {"port": int(opts["port"]), "to": opts.get("to") or "any", "action": opts.get("action") or "drop",
            "family": opts.get("family") or "any"}
    if rule["to"] not in BLOCK_TARGETS or rule["action"] not in BLOCK_ACTIONS or rule["family"] not in BLOCK_FAMILIES:
        raise ValueError(f"block: to must be one of {BLOCK_TARGETS}, family one of {BLOCK_FAMILIES}, "
                         f"action one of {tuple(BLOCK_ACTIONS)}")
    only = BLOCK_ACTIONS[rule["action"]][1]
    if only is not None:
        if rule["family"] not in ("any", only):
            raise ValueError(f"block: action {rule['action']} applies to {only} only, not family {rule['family']}")
        rule["family"] = only
    return rule


def _dns_options(opts: dict[str, Any]) -> dict[str, Any]:
    mode = opts.get("mode")
    if mode not in DNS_FAULT_MODES:
        raise ValueError(f"dns: mode must be one of {DNS_FAULT_MODES}, not {mode!r}")
    if mode != "slow":
        return {"mode": mode}
    seconds = float(opts.get("seconds") or DEFAULT_SLOW_SECONDS)
    if not 0 < seconds <= 30:
        raise ValueError(f"dns slow: seconds must be > 0 and <= 30, not {seconds}")
    return {"mode": mode, "seconds": seconds}


def _wire_name(name: str) -> bytes:
    """A DNS name as it is on the wire: each label after its length, then the root's empty label."""
    return b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"


def aaaa_query_match(name: str = EPNS_NAME) -> str:
    """nft raw payload match for a UDP query with the single question `name AAAA`. The name is fixed, so its QTYPE
    sits at a fixed offset: after the 8-byte UDP header, the 12-byte DNS header and the encoded name. Over TCP the
    header's length varies (options) and a 2-byte length precedes the message, so no fixed offset exists there; a
    stub resolver only turns to TCP after a truncated UDP answer, which a dropped query never gives."""
    wire = _wire_name(name)
    start = (8 + 12) * 8
    return (f"udp dport {DNS_PORT} @th,{start},{len(wire) * 8} 0x{wire.hex()} "
            f"@th,{start + len(wire) * 8},16 0x001c")


def _dns_rules(agent: Host, opts: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Block rules and DNAT rules for the agent's DNS traffic (UDP and TCP, v4 and v6, to any address)."""
    block, dnat = [], []
    for i, fam in enumerate(("ip", "ip6")):
        source = f"{fam} saddr {(agent.v4[0], agent.v6[0])[i]}"
        match = f"{source} meta l4proto {{ tcp, udp }} th dport {DNS_PORT}"
        if opts["mode"] == "timeout":
            block.append(f"{match} drop")
        elif opts["mode"] == "aaaa-timeout":  # A (and every other query) still reaches the healthy resolver
            block.append(f"{source} {aaaa_query_match()} drop")
        else:
            dnat.append(f"{match} dnat {fam} to {resolver_addrs(opts['mode'])[i]}")
    return block, dnat


def _tag(agent: Host) -> str:
    return agent.short.replace("-", "_")


def _targets(to: str) -> tuple[str, str] | None:
    if to == "epns":
        lo, hi = min(EPNS_ROLES.values()), max(EPNS_ROLES.values())
        return f"ip daddr {svc_v4(lo)}-{svc_v4(hi)}", f"ip6 daddr {svc_v6(lo)}-{svc_v6(hi)}"
    if to == "proxy":
        return f"ip daddr {svc_v4(PROXY_SUFFIX)}", f"ip6 daddr {svc_v6(PROXY_SUFFIX)}"
    if to == "server":
        return f"ip daddr {server_host().v4[0]}", f"ip6 daddr {server_host().v6[0]}"
    return None


def _block_rules(agent: Host, rules: list[dict[str, Any]]) -> list[str]:
    out = []
    for rule in rules:
        action = BLOCK_ACTIONS[rule["action"]][0]
        dst = _targets(rule["to"])
        for fam, family, match_dst in (("ip", "ipv4", dst[0] if dst else ""), ("ip6", "ipv6", dst[1] if dst else "")):
            if rule.get("family", "any") not in ("any", family):
                continue
            addr = agent.v4[0] if fam == "ip" else agent.v6[0]
            out.append(f"{fam} saddr {addr} {match_dst} tcp dport {rule['port']} {action}".replace("  ", " "))
    return out


def _dnat_rules(agent: Host, kinds: dict[str, Any]) -> list[str]:
    active = next((k for k in DNAT_PRECEDENCE if k in kinds), None)
    if active is None:
        return []
    ports = "{ " + ", ".join(str(p) for p in EPNS_PORTS) + " }"
    out = []
    for i, fam in enumerate(("ip", "ip6")):
        src, broker = (agent.v4[0], agent.v6[0])[i], role_addrs("broker")[i]
        match = f"{fam} saddr {src} {fam} daddr {broker}"
        if active == "broker-down":
            target, match = _endpoint(fam, broker, CLOSED_PORT), match + " meta l4proto tcp"
        elif active == "hostile":
            target = _endpoint(fam, role_addrs("hostile")[i], HOSTILE_PORTS[kinds["hostile"]["mode"]])
            match += f" tcp dport {ports}"
        elif active == "intercept":
            target = _endpoint(fam, role_addrs(interceptor_role(kinds["intercept"].get("ca", "intercept")))[i], None)
            match += f" tcp dport {ports}"
        else:
            target = _endpoint(fam, role_addrs(active)[i], None)
            match += f" tcp dport {ports}"
        out.append(f"{match} dnat {fam} to {target}")
    return out


def _endpoint(fam: str, addr: str, port: int | None) -> str:
    if port is None:
        return addr
    return f"{addr}:{port}" if fam == "ip" else f"[{addr}]:{port}"


def _idle(agent: Host, opts: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """Objects, timeout-policy rules and forward rules. The policy attaches to a flow conntrack has just
    created and not yet confirmed, so its chain must run after conntrack (mangle priority), not at raw."""
    tag, secs = _tag(agent), opts["seconds"]
    objects = [f'ct timeout idle4_{tag} {{ protocol tcp; l3proto ip; policy = {{ established: {secs} }}; }}',
               f'ct timeout idle6_{tag} {{ protocol tcp; l3proto ip6; policy = {{ established: {secs} }}; }}']
    policy = [f'ip saddr {agent.v4[0]} meta l4proto tcp ct timeout set "idle4_{tag}"',
              f'ip6 saddr {agent.v6[0]} meta l4proto tcp ct timeout set "idle6_{tag}"']
    # The middlebox forgot the flow; with loose pickup off its next packet is 'invalid' in either direction.
    verdict = "meta l4proto tcp reject with tcp reset" if opts["reset"] else "drop"
    forward = [f"{fam} {way} {addr} ct state invalid {verdict}"
               for fam, addr in (("ip", agent.v4[0]), ("ip6", agent.v6[0])) for way in ("saddr", "daddr")]
    return objects, policy, forward


def render(faults: Faults, agents: dict[str, Host]) -> str:
    objects: list[str] = []
    raw = [f'iifname "{TUN_PREFIX}*" notrack accept']  # the delay line's second pass: NAT was done on the first
    dnat: list[str] = []
    policy: list[str] = []
    block: list[str] = []
    # A ct rule is always present so the router tracks every flow from the start, before any fault exists.
    forward = ["ct state established,related counter"]
    for name in sorted(faults):
        agent, kinds = agents[name], faults[name]
        if "idle-cut" in kinds:
            o, r, f = _idle(agent, kinds["idle-cut"])
            objects, policy, forward = objects + o, policy + r, forward + f
        block += _block_rules(agent, [r for r in kinds.get("block", []) if r["to"] != "server"])
        dnat += _dnat_rules(agent, kinds)
        if "dns" in kinds:
            dns_block, dns_dnat = _dns_rules(agent, kinds["dns"])
            block, dnat = block + dns_block, dnat + dns_dnat

    def chain(name: str, hook: str, rules: list[str]) -> list[str]:
        return [f"  chain {name} {{", f"    {hook}", *(f"    {r}" for r in rules), "  }"]

    body = [f"table inet {TABLE} {{", *(f"  {o}" for o in objects),
            *chain("agent_raw", "type filter hook prerouting priority raw; policy accept;", raw),
            # Blocks act before DNAT: they match what the agent asked for, and a reset then carries the
            # address the agent dialled (a reset built after DNAT would leave with the rewritten one).
            *chain("agent_block", "type filter hook prerouting priority -160; policy accept;", block),
            *chain("agent_ctpolicy", "type filter hook prerouting priority mangle; policy accept;", policy),
            *chain("agent_dnat", "type nat hook prerouting priority dstnat; policy accept;", dnat),
            *chain("agent_forward", "type filter hook forward priority filter; policy accept;", forward), "}"]
    # Declaring then deleting makes the file valid whether or not the table exists, and nft -f applies it atomically.
    return "\n".join([f"table inet {TABLE} {{}}", f"delete table inet {TABLE}", *body]) + "\n"


def render_server(faults: Faults, agents: dict[str, Host]) -> str:
    """pn-server's own ruleset: the agents' blocks with to="server" (see BLOCK_TARGETS)."""
    rules: list[str] = []
    for name in sorted(faults):
        rules += _block_rules(agents[name], [r for r in faults[name].get("block", []) if r["to"] == "server"])
    body = [f"table inet {SERVER_TABLE} {{", "  chain agent_block {",
            "    type filter hook input priority filter; policy accept;", *(f"    {r}" for r in rules), "  }", "}"]
    return "\n".join([f"table inet {SERVER_TABLE} {{}}", f"delete table inet {SERVER_TABLE}", *body]) + "\n"
