"""The firewall backends of the lab tests as one table (test_firewall_backends_lab.py): for each, the hosts and their
scenario, the host's own default deny, how its ruleset and files are read, and the steps of its life cycle that are
its own. The shared life cycle (before, check, apply, again, absent) runs every backend from this table."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Sequence

from _firewall import (
    CONFIRMED_ROLLBACK_SECONDS,
    NFT_DEFAULT_DENY,
    clean_host,
    file_mode,
    files_snapshot,
    firewall,
    firewalld_default_deny,
    firewalld_direct_deny,
    firewalld_reset,
    iptables_default_deny,
    nft_default_deny,
    set_epns_address,
    sh,
    ufw_default_deny,
    ufw_reset,
)

Hosts = Dict[str, Dict[str, Any]]
Record = Dict[str, Any]

DIRECT_PROBE = {"timeout": 5, "connect_timeout": 1.5}
PROXY_PROBE = {"timeout": 5, "connect_timeout": 1.5, "direct": False, "proxies": ["http://proxy.lab:3128"]}


@dataclass(frozen=True)
class Boot:
    """How a backend's persisted rules are proven: hosts(lab) as in Backend.hosts; prepare(lab, hosts) puts the
    host's own default deny where its boot loads it (default: Backend.deny) and returns what restore(lab, hosts,
    saved) puts back afterwards; other_boot_ruleset(lab): hosts whose saved form differs from the runtime by design;
    checks(lab, rec): the backend's own assertions on the reboot record."""

    hosts: Callable[[Any], Hosts]
    checks: Callable[[Any, Record], None]
    prepare: Optional[Callable[[Any, Hosts], Any]] = None
    restore: Optional[Callable[[Any, Hosts, Any], None]] = None
    other_boot_ruleset: Callable[[Any], Sequence[str]] = lambda lab: ()


@dataclass(frozen=True)
class Backend:
    """One row of the table. hosts(lab): host -> {'args': epns_firewall's, 'probe': epns_probe's, and the row's own
    keys}; deny(lab, host, spec): the host's own default-deny egress; ruleset(lab, host, spec) and files(lab, host):
    what "nothing changed" and "restored exactly" compare; after_apply(lab, hosts, rec): what the row records right
    after the apply; own_steps(lab, hosts, rec): its steps between the second run and state=absent (address
    changes, the refresh job); after_absent(lab, hosts, rec): what it records after state=absent; boot: the reboot
    life cycle."""

    name: str
    boot: Boot
    hosts: Callable[[Any], Hosts]
    reset: Callable[[Any, str], None]
    deny: Callable[[Any, str, Mapping[str, Any]], None]
    ruleset: Callable[[Any, str, Mapping[str, Any]], str]
    files: Callable[[Any, str], Dict[str, Any]]
    own_steps: Callable[[Any, Hosts, Record], None]
    after_apply: Optional[Callable[[Any, Hosts, Record], None]] = None
    after_absent: Optional[Callable[[Any, Hosts, Record], None]] = None
    # the ControlPersist session opened after the deny is on, so that conntrack tracks it (firewalld, ufw)
    ping_after_deny: bool = False
    absent_args: Optional[Mapping[str, Any]] = None
    # the failure classes a blocked path may show before the apply (None: any; REJECT targets vary)
    blocked_classes: Optional[Sequence[str]] = None
    # a check-mode run after the second run must report no change as well
    check_again: bool = False
    check_mode_extra: Optional[Callable[[Mapping[str, Any]], None]] = None


def tree(lab: Any, host: str, directory: str) -> str:
    """Every entry below directory with its type, mode, owner and group, and each file's size (directory sizes are
    overlayfs noise: a copied-up directory reports its own)."""
    return sh(lab, host, ["sh", "-c", f"cd {directory} && find . -type f -printf 'f %m %u:%g %s %p\\n' "
                          "-o -printf '%y %m %u:%g %p\\n' | sort"])


# -- nftables: agent1 and the server open EPNS directly, agent2 through the HTTP proxy (via_proxy) ----------------
def nft_ruleset(lab: Any, host: str, spec: Optional[Mapping[str, Any]] = None) -> str:
    return sh(lab, host, ["nft", "list", "ruleset"])


def _nft_hosts(lab: Any) -> Hosts:
    return {
        lab.agents[0]: {"args": {"backend": "auto", "extra_destinations": ["91.228.165.144/30", "91.228.165.148"],
                                 "rollback_seconds": CONFIRMED_ROLLBACK_SECONDS, "refresh": True},
                        "probe": DIRECT_PROBE},
        lab.agents[1]: {"args": {"via_proxy": "proxy.lab:3128", "rollback_seconds": CONFIRMED_ROLLBACK_SECONDS},
                        "probe": PROXY_PROBE},
        lab.server: {"args": {"backend": "nftables"}, "probe": DIRECT_PROBE},
    }


def _nft_conf_modes(lab: Any, hosts: Hosts, rec: Record) -> None:
    rec["conf_mode_applied"] = {h: file_mode(lab, h, "/etc/nftables.conf") for h in hosts}


def _nft_own_steps(lab: Any, hosts: Hosts, rec: Record) -> None:
    # An address that resolves differently (agent1, server): a set update, not a rebuild.
    moved = [lab.agents[0], lab.server]
    for host in moved:
        set_epns_address(lab, host, "198.18.1.11")
    rec["moved"] = firewall(lab, {h: s["args"] for h, s in hosts.items()})
    rec["ruleset_moved"] = {h: nft_ruleset(lab, h) for h in hosts}
    for host in moved:
        set_epns_address(lab, host, "198.18.1.10")
    # The refresh job (agent1 has refresh: true) brings it back, touching only the sets.
    agent = lab.agents[0]
    rec["cron"] = sh(lab, agent, ["cat", "/etc/cron.d/protectnet_epns_refresh"])
    rec["refresh_out"] = sh(lab, agent, ["/usr/bin/python3", "/etc/protectnet_epns/refresh.py"])
    rec["ruleset_refreshed"] = nft_ruleset(lab, agent)
    rec["refresh_again_out"] = sh(lab, agent, ["/usr/bin/python3", "/etc/protectnet_epns/refresh.py"])


def _nft_check_mode_extra(flow: Mapping[str, Any]) -> None:
    for host in flow["hosts"]:
        result = flow["check"][host]
        assert result["changes"]["rules"]["added"], result["changes"]
        assert result["destinations"] == flow["apply"][host]["destinations"]
    assert "+set inet protectnet_epns epns_v4:" in flow["check"][next(iter(flow["hosts"]))]["_stdout"]


def _nft_boot_hosts(lab: Any) -> Hosts:
    return {lab.agents[0]: {"args": {"backend": "nftables", "rollback_seconds": CONFIRMED_ROLLBACK_SECONDS},
                            "probe": DIRECT_PROBE},
            lab.server: {"args": {"backend": "nftables"}, "probe": DIRECT_PROBE}}


def _nft_boot_prepare(lab: Any, hosts: Hosts) -> Dict[str, str]:
    """The host's default deny in /etc/nftables.conf, as nftables.service loads it at boot."""
    confs = {h: sh(lab, h, ["cat", "/etc/nftables.conf"]) for h in hosts}
    for host in hosts:
        sh(lab, host, ["sh", "-c", "cat > /etc/nftables.conf"], input=confs[host] + NFT_DEFAULT_DENY)
    return confs


def _nft_boot_restore(lab: Any, hosts: Hosts, confs: Dict[str, str]) -> None:
    for host, conf in confs.items():
        sh(lab, host, ["sh", "-c", "cat > /etc/nftables.conf"], input=conf)


def _nft_boot_checks(lab: Any, rec: Record) -> None:
    assert "table inet protectnet_epns" in rec["ruleset_rebooted"][lab.server]
    assert all("not persisted" not in w for r in rec["apply"].values() for w in r.get("warnings", []))


NFTABLES = Backend(
    name="nftables", hosts=_nft_hosts,
    boot=Boot(hosts=_nft_boot_hosts, prepare=_nft_boot_prepare, restore=_nft_boot_restore, checks=_nft_boot_checks),
    reset=clean_host, deny=lambda lab, host, spec: nft_default_deny(lab, host),
    ruleset=nft_ruleset, files=files_snapshot, own_steps=_nft_own_steps, after_apply=_nft_conf_modes,
    blocked_classes=("tcp_timeout", "proxy_unreachable"), check_again=True, check_mode_extra=_nft_check_mode_extra)


# -- iptables: agent1 legacy with ipsets, agent2 iptables-nft with one rule per network (ipset: false), the server
# iptables-nft picked by backend=auto; the host's own default deny is policy DROP in both families ---------------
def iptables_ruleset(lab: Any, host: str, variant: str) -> str:
    """Both families' iptables-save (timestamps and packet counters removed), the ipsets and the nft ruleset."""
    parts = []
    for base in ("iptables", "ip6tables"):
        out = sh(lab, host, [f"{base}-{variant}-save"])
        parts.append("\n".join(re.sub(r" \[\d+:\d+\]$", "", line) for line in out.splitlines()
                               if not line.startswith("#")))
    parts.append(re.sub(r" initval 0x[0-9a-f]+", "", sh(lab, host, ["ipset", "save"])))
    parts.append(re.sub(r"counter packets \d+ bytes \d+", "counter", sh(lab, host, ["nft", "list", "ruleset"])))
    return "\n".join(parts)


def _iptables_hosts(lab: Any) -> Hosts:
    chosen: Hosts = {
        lab.agents[0]: {"variant": "legacy", "args": {"backend": "iptables", "iptables_variant": "legacy",
                                                      "extra_destinations": ["91.228.165.144/30"],
                                                      "rollback_seconds": CONFIRMED_ROLLBACK_SECONDS, "refresh": True}},
        lab.agents[1]: {"variant": "nft", "args": {"backend": "iptables", "ipset": False,
                                                   "extra_destinations": ["2001:db8:ff::/48"]}},
        lab.server: {"variant": "nft", "args": {"backend": "auto", "rollback_seconds": CONFIRMED_ROLLBACK_SECONDS}},
    }
    for spec in chosen.values():
        spec["probe"] = DIRECT_PROBE
    return chosen


def _iptables_own_steps(lab: Any, hosts: Hosts, rec: Record) -> None:
    args = {h: s["args"] for h, s in hosts.items()}
    for host in (lab.agents[0], lab.agents[1]):
        set_epns_address(lab, host, "198.18.1.11")
    rec["moved"] = firewall(lab, args)
    rec["moved_ruleset"] = {h: iptables_ruleset(lab, h, hosts[h]["variant"]) for h in hosts}
    for host in (lab.agents[0], lab.agents[1]):
        set_epns_address(lab, host, "198.18.1.10")
    agent = lab.agents[0]
    rec["refresh_out"] = sh(lab, agent, ["/usr/bin/python3", "/etc/protectnet_epns/refresh.py"])
    rec["refreshed"] = iptables_ruleset(lab, agent, "legacy")
    rec["saved_v4"] = sh(lab, agent, ["cat", "/etc/iptables/rules.v4"])  # ipsets at runtime, no ipset loader


def _iptables_boot_hosts(lab: Any) -> Hosts:
    return {lab.agents[0]: {"variant": "legacy", "probe": DIRECT_PROBE,
                            "args": {"backend": "iptables", "iptables_variant": "legacy",
                                     "rollback_seconds": CONFIRMED_ROLLBACK_SECONDS}},
            lab.server: {"variant": "nft", "probe": DIRECT_PROBE, "args": {"backend": "iptables", "ipset": False}}}


def _iptables_boot_prepare(lab: Any, hosts: Hosts) -> None:
    """The host's default deny saved where netfilter-persistent loads it at boot, as `netfilter-persistent save`
    writes it (0640)."""
    for host, spec in hosts.items():
        iptables_default_deny(lab, host, spec["variant"])
        sh(lab, host, ["mkdir", "-p", "/etc/iptables"])
        for base, path in (("iptables", "/etc/iptables/rules.v4"), ("ip6tables", "/etc/iptables/rules.v6")):
            sh(lab, host, ["sh", "-c", f"umask 027; {base}-{spec['variant']}-save > {path}"])


def _iptables_boot_checks(lab: Any, rec: Record) -> None:
    with_ipset = rec["ruleset_rebooted"][lab.agents[0]]
    assert "-d 198.18.1.10/32 -p tcp -m multiport --dports 443,8883" in with_ipset
    assert "-d 2001:db8:0:1::10/128 -p tcp -m multiport --dports 443,8883" in with_ipset
    assert "--match-set protectnet_epns_epns_v4" in rec["ruleset_applied"][lab.agents[0]]


IPTABLES = Backend(
    name="iptables", hosts=_iptables_hosts,
    # no ipset loader in the lab: the saved rules of agent1 name each network instead of the ipset (by design)
    boot=Boot(hosts=_iptables_boot_hosts, prepare=_iptables_boot_prepare, checks=_iptables_boot_checks,
              other_boot_ruleset=lambda lab: [lab.agents[0]]), reset=clean_host,
    deny=lambda lab, host, spec: iptables_default_deny(lab, host, spec["variant"]),
    ruleset=lambda lab, host, spec: iptables_ruleset(lab, host, spec["variant"]), files=files_snapshot,
    own_steps=_iptables_own_steps, absent_args={"backend": "iptables"}, blocked_classes=("tcp_timeout",))


# -- firewalld: agent1 picks it by auto (rollback, refresh, extra destinations), agent2 asks for it and goes through
# the HTTP proxy; the host's policy `lab-deny-egress` HOST -> ANY, target REJECT, priority 100, with ipv6-icmp
# allowed (neighbour discovery, FIREWALL-BACKENDS-NOTES.md) and an unrelated port of its own (9999/tcp). agent3 runs
# the direct-rules fallback (firewalld_mode: direct, as on firewalld < 0.9) in the same flow: its default deny is
# made of the host's own permanent direct rules in /etc/firewalld/direct.xml (REJECT at priority 99), as egress
# filtering was done before firewalld had policies -------------------------------------------------------------
def firewalld_ruleset(lab: Any, host: str, spec: Optional[Mapping[str, Any]] = None) -> str:
    """firewalld's runtime (what it put in nftables) and its permanent configuration files, byte for byte. Tables
    are sorted: a reload recreates `inet firewalld`, which moves it behind other tables in `nft list ruleset`."""
    # counters: iptables-nft rules (direct rules) count packets
    text = re.sub(r"counter packets \d+ bytes \d+", "counter", sh(lab, host, ["nft", "list", "ruleset"]))
    chunks = text.split("\ntable ")
    tables = sorted((c if c.startswith("table ") else "table " + c).rstrip("\n") for c in chunks if c.strip())
    return ("\n".join(tables) + "\n"
            + sh(lab, host, ["sh", "-c", "cd /etc/firewalld && find . -type f | sort | xargs md5sum"]))


def firewalld_files(lab: Any, host: str) -> Dict[str, Any]:
    snap: Dict[str, Any] = dict(files_snapshot(lab, host))
    snap["(firewalld)"] = tree(lab, host, "/etc/firewalld")
    snap["(etc)"] = sh(lab, host, ["ls", "-a", "/etc"])  # no directory of ours is left behind
    return snap


def _firewalld_hosts(lab: Any) -> Hosts:
    return {
        lab.agents[0]: {"args": {"backend": "auto", "extra_destinations": ["91.228.165.144/30"],
                                 "rollback_seconds": CONFIRMED_ROLLBACK_SECONDS, "refresh": True},
                        "probe": DIRECT_PROBE},
        lab.agents[1]: {"args": {"backend": "firewalld", "via_proxy": "proxy.lab:3128"}, "probe": PROXY_PROBE},
        lab.agents[2]: {"args": {"backend": "firewalld", "firewalld_mode": "direct",
                                 "rollback_seconds": CONFIRMED_ROLLBACK_SECONDS,
                                 "refresh": True}, "probe": DIRECT_PROBE, "direct": True},
    }


def _firewalld_deny(lab: Any, host: str, spec: Mapping[str, Any]) -> None:
    (firewalld_direct_deny if spec.get("direct") else firewalld_default_deny)(lab, host)


def _direct_host(hosts: Hosts) -> str:
    return next(h for h, s in hosts.items() if s.get("direct"))


def _firewalld_objects(lab: Any, hosts: Hosts, record: Record) -> None:
    policy_hosts = [h for h, s in hosts.items() if not s.get("direct")]
    direct_host = _direct_host(hosts)
    record["policy_applied"] = {h: sh(lab, h, ["cat", "/etc/firewalld/policies/protectnet_epns.xml"])
                                for h in policy_hosts}
    record["deny_applied"] = {h: sh(lab, h, ["firewall-cmd", "--info-policy", "lab-deny-egress"])
                              for h in policy_hosts}
    record["direct_xml_applied"] = sh(lab, direct_host, ["cat", "/etc/firewalld/direct.xml"])
    record["direct_rules_applied"] = sh(lab, direct_host, ["firewall-cmd", "--direct", "--get-all-rules"])
    record["direct_iptables_applied"] = sh(lab, direct_host, ["sh", "-c", "iptables-save; ip6tables-save"])


def _firewalld_own_steps(lab: Any, hosts: Hosts, rec: Record) -> None:
    direct_host = rec["direct_host"] = _direct_host(hosts)
    args = {h: s["args"] for h, s in hosts.items()}
    agent = lab.agents[0]
    movers = [agent, direct_host]
    for host in movers:
        set_epns_address(lab, host, "198.18.1.11")
    moved = firewall(lab, {h: args[h] for h in movers})
    rec["moved"], rec["moved_direct"] = moved[agent], moved[direct_host]
    rec["entries_moved"] = sh(lab, agent, ["firewall-cmd", "--ipset", "protectnet_epns_epns_v4", "--get-entries"])
    rec["entries_moved_direct"] = sh(lab, direct_host, ["ipset", "list", "protectnet_epns_epns_v4"])
    for host in movers:
        set_epns_address(lab, host, "198.18.1.10")
    rec["refresh_out"] = sh(lab, agent, ["/usr/bin/python3", "/etc/protectnet_epns/refresh.py"])
    rec["ruleset_refreshed"] = firewalld_ruleset(lab, agent)
    rec["refresh_out_direct"] = sh(lab, direct_host, ["/usr/bin/python3", "/etc/protectnet_epns/refresh.py"])
    rec["ruleset_refreshed_direct"] = firewalld_ruleset(lab, direct_host)


def _firewalld_after_absent(lab: Any, hosts: Hosts, rec: Record) -> None:
    direct_host = _direct_host(hosts)
    rec["direct_xml_absent"] = sh(lab, direct_host, ["cat", "/etc/firewalld/direct.xml"])
    rec["ipsets_absent_direct"] = sh(lab, direct_host, ["ipset", "list", "-n"])


def _firewalld_boot_hosts(lab: Any) -> Hosts:
    """Policy mode (agent1) and direct mode (agent3): the boot is firewalld started from its permanent files."""
    return {lab.agents[0]: {"args": {"backend": "firewalld", "rollback_seconds": CONFIRMED_ROLLBACK_SECONDS},
                            "probe": DIRECT_PROBE},
            lab.agents[2]: {"args": {"backend": "firewalld", "firewalld_mode": "direct"}, "probe": DIRECT_PROBE,
                            "direct": True}}


def _firewalld_boot_checks(lab: Any, rec: Record) -> None:
    assert "protectnet_epns" in rec["ruleset_rebooted"][lab.agents[2]]


FIREWALLD = Backend(
    name="firewalld", hosts=_firewalld_hosts, boot=Boot(hosts=_firewalld_boot_hosts, checks=_firewalld_boot_checks),
    reset=firewalld_reset, deny=_firewalld_deny, ruleset=firewalld_ruleset,
    files=firewalld_files, own_steps=_firewalld_own_steps, after_apply=_firewalld_objects,
    after_absent=_firewalld_after_absent, ping_after_deny=True)


# -- ufw: agent1 picks it by auto (rollback, refresh, extra destinations), agent2 asks for it and goes through the
# HTTP proxy. The host's ufw: SSH allowed in, sshd's replies allowed out by source port *before* egress turns deny
# (conntrack pitfall, FIREWALL-BACKENDS-NOTES.md), `default deny outgoing`, and an unrelated allow-out rule ------
UFW_FILES = ("/etc/ufw/user.rules", "/etc/ufw/user6.rules", "/etc/ufw/ufw.conf", "/etc/default/ufw")


def ufw_ruleset(lab: Any, host: str, spec: Optional[Mapping[str, Any]] = None) -> str:
    """What ufw loaded (iptables-save of both families without counters) and its saved rules, byte for byte."""
    text = sh(lab, host, ["sh", "-c", "iptables-save; ip6tables-save"])
    text = "\n".join(re.sub(r" \[\d+:\d+\]$", "", line) for line in text.splitlines() if not line.startswith("#"))
    return text + "\n" + "".join(sh(lab, host, ["cat", path]) for path in UFW_FILES[:2])


def ufw_files(lab: Any, host: str) -> Dict[str, Any]:
    snap: Dict[str, Any] = dict(files_snapshot(lab, host))
    for path in UFW_FILES:
        snap[path] = lab.run(host, ["cat", path]).stdout
        snap[f"{path} (mode owner group)"] = file_mode(lab, host, path)
    snap["(ufw dir)"] = tree(lab, host, "/etc/ufw")
    snap["(etc)"] = sh(lab, host, ["ls", "-a", "/etc"])  # no directory of ours is left behind
    return snap


def _ufw_hosts(lab: Any) -> Hosts:
    return {
        lab.agents[0]: {"args": {"backend": "auto", "extra_destinations": ["91.228.165.144/30"],
                                 "rollback_seconds": CONFIRMED_ROLLBACK_SECONDS, "refresh": True},
                        "probe": DIRECT_PROBE},
        lab.agents[1]: {"args": {"backend": "ufw", "via_proxy": "proxy.lab:3128"}, "probe": PROXY_PROBE},
    }


def _ufw_status(lab: Any, hosts: Hosts, record: Record) -> None:
    record["status_applied"] = {h: sh(lab, h, ["ufw", "status", "verbose"]) for h in hosts}


def _ufw_own_steps(lab: Any, hosts: Hosts, rec: Record) -> None:
    agent = lab.agents[0]
    set_epns_address(lab, agent, "198.18.1.11")
    rec["moved"] = firewall(lab, {agent: hosts[agent]["args"]})[agent]
    rec["added_moved"] = sh(lab, agent, ["ufw", "show", "added"])
    set_epns_address(lab, agent, "198.18.1.10")
    rec["refresh_out"] = sh(lab, agent, ["/usr/bin/python3", "/etc/protectnet_epns/refresh.py"])
    rec["ruleset_refreshed"] = ufw_ruleset(lab, agent)


def _ufw_check_mode_extra(flow: Mapping[str, Any]) -> None:
    for host in flow["hosts"]:
        assert flow["check"][host]["commands"] == flow["apply"][host]["commands"]


def _ufw_boot_hosts(lab: Any) -> Hosts:
    return {lab.agents[0]: {"args": {"backend": "ufw", "rollback_seconds": CONFIRMED_ROLLBACK_SECONDS},
                            "probe": DIRECT_PROBE}}


def _ufw_boot_checks(lab: Any, rec: Record) -> None:
    rebooted = rec["ruleset_rebooted"][lab.agents[0]]
    assert re.search(r"^-A ufw6-user-output -d 2001:db8:0:1::10(/128)? .*--dports 443,8883", rebooted, re.M), rebooted


UFW = Backend(
    name="ufw", hosts=_ufw_hosts, boot=Boot(hosts=_ufw_boot_hosts, checks=_ufw_boot_checks), reset=ufw_reset,
    deny=lambda lab, host, spec: ufw_default_deny(lab, host),
    ruleset=ufw_ruleset, files=ufw_files, own_steps=_ufw_own_steps, after_apply=_ufw_status, ping_after_deny=True,
    check_mode_extra=_ufw_check_mode_extra)


BACKENDS: Dict[str, Backend] = {b.name: b for b in (NFTABLES, IPTABLES, FIREWALLD, UFW)}
