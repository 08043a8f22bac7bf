"""Helpers for the firewall lab tests: run epns_firewall per host, set up a host's own default-deny egress,
take byte-for-byte snapshots of a host's firewall and of the files the module may touch, and clean up."""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from _ansible import PLAYBOOKS, probe, run_playbook, write_host_vars

# Files and directories the firewall module may write on a host (all inside the host's overlay /etc).
WATCHED_FILES = ("/etc/nftables.conf", "/etc/iptables/rules.v4", "/etc/iptables/rules.v6", "/etc/iptables/ipsets",
                 "/etc/cron.d/protectnet_epns_refresh", "/etc/protectnet_epns/firewall.json",
                 "/etc/protectnet_epns/nftables.nft")
OWN_DIR = "/etc/protectnet_epns"
# The flows expect their change to be confirmed: the rollback timer only has to outlast the confirmation over a fresh
# SSH connection on a loaded machine, and a confirmed run never waits for it. The tests that want the rollback to
# fire use 5 s.
CONFIRMED_ROLLBACK_SECONDS = 30


def firewall(lab: Any, per_host_args: Mapping[str, Mapping[str, Any]], *, args: Sequence[str] = (),
             timeout: float = 180) -> Dict[str, Dict[str, Any]]:
    """Run epns_firewall on each named host with its own arguments; return each host's registered result."""
    with tempfile.TemporaryDirectory(prefix="pn-fw-") as work:
        workdir = Path(work)
        overlay = write_host_vars(workdir / "inventory", {h: {"fw_args": dict(a)} for h, a in per_host_args.items()})
        result_file = workdir / "results.json"
        done = run_playbook(lab, PLAYBOOKS / "firewall.yml", inventories=[overlay], args=list(args), timeout=timeout,
                            extra_vars={"fw_targets": ",".join(per_host_args), "result_file": str(result_file)})
        if not result_file.exists():
            raise AssertionError(f"ansible-playbook wrote no results (rc={done.returncode}):\n"
                                 f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
        results: Dict[str, Dict[str, Any]] = json.loads(result_file.read_text())
        for host, result in results.items():
            result["_stdout"] = done.stdout  # the diff output of --diff runs, for the tests that read it
            results[host] = result
        return results


# -- the life cycle every backend's lab test records ----------------------------------------------------------------
HostCheck = Callable[[str], Any]


def life_cycle_until_again(lab: Any, hosts: Mapping[str, Mapping[str, Any]], *, ruleset: HostCheck,
                           files: HostCheck, after_apply: Optional[Callable[[Dict[str, Any]], None]] = None
                           ) -> Dict[str, Any]:
    """Before (probe, ruleset, files) -> check mode with --diff (ruleset, files) -> apply with --diff (timed, ruleset,
    after_apply's own records, probe) -> a second run (ruleset). Each host's spec has 'args' (epns_firewall) and
    'probe' (epns_probe). Returns the record the tests read: probe_before, ruleset_before, files_before, check,
    ruleset_after_check, files_after_check, apply, apply_seconds, ruleset_applied, probe_after, again, ruleset_again."""
    args = {h: s["args"] for h, s in hosts.items()}
    probes = {h: s["probe"] for h, s in hosts.items()}
    rec: Dict[str, Any] = {"hosts": hosts}
    rec["probe_before"] = probe(lab, probes)
    rec["ruleset_before"] = {h: ruleset(h) for h in hosts}
    rec["files_before"] = {h: files(h) for h in hosts}

    rec["check"] = firewall(lab, args, args=["--check", "--diff"])
    rec["ruleset_after_check"] = {h: ruleset(h) for h in hosts}
    rec["files_after_check"] = {h: files(h) for h in hosts}

    started = time.monotonic()
    rec["apply"] = firewall(lab, args, args=["--diff"])
    rec["apply_seconds"] = time.monotonic() - started
    rec["ruleset_applied"] = {h: ruleset(h) for h in hosts}
    if after_apply:
        after_apply(rec)
    rec["probe_after"] = probe(lab, probes)

    rec["again"] = firewall(lab, args)
    rec["ruleset_again"] = {h: ruleset(h) for h in hosts}
    return rec


def life_cycle_absent(lab: Any, rec: Dict[str, Any], *, ruleset: HostCheck, files: HostCheck,
                      absent_args: Optional[Mapping[str, Any]] = None) -> None:
    """state=absent with --diff on every host of the record, then ruleset_absent, files_absent and probe_absent."""
    hosts = rec["hosts"]
    rec["absent"] = firewall(lab, {h: {"state": "absent", **(absent_args or {})} for h in hosts}, args=["--diff"])
    rec["ruleset_absent"] = {h: ruleset(h) for h in hosts}
    rec["files_absent"] = {h: files(h) for h in hosts}
    rec["probe_absent"] = probe(lab, {h: s["probe"] for h, s in hosts.items()})


# What every backend's life cycle must show (test_firewall_backends_lab.py adds each backend's own checks).
def assert_check_mode_predicts_and_touches_nothing(flow: Mapping[str, Any], backend: Optional[str] = None) -> None:
    for host in flow["hosts"]:
        result = flow["check"][host]
        assert not result.get("failed"), result.get("msg")
        assert result["changed"] is True and (backend is None or result["backend"] == backend), result
        assert flow["ruleset_after_check"][host] == flow["ruleset_before"][host]
        assert flow["files_after_check"][host] == flow["files_before"][host]
        assert result["changes"] == flow["apply"][host]["changes"]  # the same plan as the real run


def assert_second_run_changes_nothing(flow: Mapping[str, Any]) -> None:
    for host in flow["hosts"]:
        again = flow["again"][host]
        assert again["changed"] is False, (again["changes"], again.get("files"))
        assert again["commands"] == []
        assert flow["ruleset_again"][host] == flow["ruleset_applied"][host]


def assert_absent_restores_the_previous_state(flow: Mapping[str, Any]) -> None:
    for host in flow["hosts"]:
        assert flow["absent"][host]["changed"] is True, flow["absent"][host].get("msg")
        assert flow["ruleset_absent"][host] == flow["ruleset_before"][host]
        assert flow["files_absent"][host] == flow["files_before"][host]
        assert flow["probe_absent"][host]["verdict"] == "unreachable"
    # every step ran over the same ssh session setup: it survived the firewall's reloads
    assert all(not r.get("unreachable") for r in flow["absent"].values())


def assert_reachable_after_on_ipv4_and_ipv6(flow: Mapping[str, Any], direct_host: str) -> None:
    for host, result in flow["probe_after"].items():
        assert result["verdict"] == "reachable", (host, path_failures(result))
    for path in flow["probe_after"][direct_host]["paths"]:
        assert path["ok"], path
        assert {a["family"] for a in path["attempts"] if a["ok"]} == {"ipv4", "ipv6"}


def ping(lab: Any, hosts: Sequence[str]) -> None:
    done = run_playbook(lab, PLAYBOOKS / "ping.yml", extra_vars={"ping_targets": ",".join(hosts)})
    assert done.returncode == 0, done.stdout[-3000:]


def sh(lab: Any, host: str, argv: Sequence[str], *, input: Optional[str] = None, check: bool = True) -> str:
    done = lab.run(host, list(argv), input=input, timeout=60)
    if check and done.returncode != 0:
        raise AssertionError(f"{host}: {' '.join(argv)} failed ({done.returncode}): {done.stderr}{done.stdout}")
    return str(done.stdout)


def files_snapshot(lab: Any, host: str) -> Dict[str, Optional[str]]:
    snap: Dict[str, Optional[str]] = {}
    for path in WATCHED_FILES:
        done = lab.run(host, ["cat", path])
        snap[path] = done.stdout if done.returncode == 0 else None
        snap[f"{path} (mode owner group)"] = file_mode(lab, host, path)
    # every file of ours with its mode, owner and group (the refresh job's script too, which WATCHED_FILES lacks)
    done = lab.run(host, ["find", OWN_DIR, "/etc/iptables", "-type", "f", "-printf", "%m %u:%g %p\n"])
    snap["(own files)"] = "\n".join(sorted(done.stdout.splitlines())) if done.returncode == 0 else ""
    return snap


def file_mode(lab: Any, host: str, path: str) -> Optional[str]:
    """'755 root root', or None when the file is absent: "absent restores exactly" compares these too."""
    done = lab.run(host, ["stat", "-c", "%a %U %G", path])
    return done.stdout.strip() if done.returncode == 0 else None


NFT_DEFAULT_DENY = """
table inet hostfw {
    chain output {
        type filter hook output priority 0; policy drop;
        ct state established,related accept
        tcp sport 22 accept
        oifname "lo" accept
        meta l4proto ipv6-icmp accept
        meta l4proto { tcp, udp } th dport 53 accept comment "DNS: epns.eset.com comes from the lab's resolver"
        tcp dport 9999 accept comment "the host's own unrelated rule"
    }
}
"""


def nft_default_deny(lab: Any, host: str) -> None:
    """A foreign table with a default-deny egress that keeps the SSH session (conntrack pitfall: sport 22)."""
    sh(lab, host, ["nft", "-f", "-"], input=NFT_DEFAULT_DENY)


# A default-deny host still lets its resolver through: epns.eset.com comes from the lab's DNS (pnlab.resolver).
DNS_ACCEPT = "-A OUTPUT -p udp -m udp --dport 53 -j ACCEPT\n-A OUTPUT -p tcp -m tcp --dport 53 -j ACCEPT\n"


def iptables_default_deny(lab: Any, host: str, variant: str) -> None:
    for base in ("iptables", "ip6tables"):
        icmp = "-A OUTPUT -p ipv6-icmp -j ACCEPT\n" if base == "ip6tables" else ""
        sh(lab, host, [f"{base}-{variant}-restore", "--noflush"], input=(
            "*filter\n:OUTPUT DROP [0:0]\n"
            "-A OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
            "-A OUTPUT -p tcp -m tcp --sport 22 -j ACCEPT\n-A OUTPUT -o lo -j ACCEPT\n" + icmp + DNS_ACCEPT +
            '-A OUTPUT -p tcp -m tcp --dport 9999 -m comment --comment "the host\'s own unrelated rule" -j ACCEPT\n'
            "COMMIT\n"))


def clean_host(lab: Any, host: str) -> None:
    """Back to an open, empty firewall and none of the module's files (the lab's overlay /etc is per host)."""
    lab.run(host, ["nft", "flush", "ruleset"])
    for variant in ("legacy", "nft"):
        for base in ("iptables", "ip6tables"):
            if lab.run(host, [f"{base}-{variant}-save"]).stdout.strip():
                lab.run(host, [f"{base}-{variant}-restore"], input="*filter\n:INPUT ACCEPT [0:0]\n"
                        ":FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n")
    lab.run(host, ["nft", "flush", "ruleset"])  # iptables-nft's tables too
    lab.run(host, ["ipset", "destroy"])
    lab.run(host, ["rm", "-rf", OWN_DIR, "/etc/iptables", "/etc/cron.d/protectnet_epns_refresh",
                   "/run/protectnet_epns"])
    conf = lab.run(host, ["cat", "/etc/nftables.conf"]).stdout
    if "protectnet.epns" in conf:
        keep: List[str] = []
        for line in conf.splitlines():
            if "protectnet" in line or (line.startswith("include") and "protectnet" in line):
                continue
            keep.append(line)
        lab.run(host, ["sh", "-c", "cat > /etc/nftables.conf"], input="\n".join(keep).rstrip("\n") + "\n")


# -- the host's own firewalld and ufw default-deny egress ----------------------------------------------------------
DENY_POLICY = """<?xml version="1.0" encoding="utf-8"?>
<policy target="REJECT" priority="100">
  <short>lab-deny-egress</short>
  <ingress-zone name="HOST"/>
  <egress-zone name="ANY"/>
  <protocol value="ipv6-icmp"/>
  <service name="dns"/>
  <port port="9999" protocol="tcp"/>
</policy>
"""


def firewalld_default_deny(lab: Any, host: str) -> None:
    lab.start_service(host, "firewalld")
    sh(lab, host, ["sh", "-c", "cat > /etc/firewalld/policies/lab-deny-egress.xml"], input=DENY_POLICY)
    sh(lab, host, ["firewall-cmd", "--reload"])


DENY_DIRECT = """<?xml version="1.0" encoding="utf-8"?>
<direct>
  <rule ipv="ipv4" table="filter" chain="OUTPUT" priority="10">-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT</rule>
  <rule ipv="ipv4" table="filter" chain="OUTPUT" priority="10">-p tcp --sport 22 -j ACCEPT</rule>
  <rule ipv="ipv4" table="filter" chain="OUTPUT" priority="10">-o lo -j ACCEPT</rule>
  <rule ipv="ipv4" table="filter" chain="OUTPUT" priority="10">-p udp --dport 53 -j ACCEPT</rule>
  <rule ipv="ipv4" table="filter" chain="OUTPUT" priority="10">-p tcp --dport 53 -j ACCEPT</rule>
  <rule ipv="ipv4" table="filter" chain="OUTPUT" priority="10">-p tcp --dport 9999 -m comment --comment "host own rule" -j ACCEPT</rule>
  <rule ipv="ipv4" table="filter" chain="OUTPUT" priority="99">-j REJECT</rule>
  <rule ipv="ipv6" table="filter" chain="OUTPUT" priority="10">-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT</rule>
  <rule ipv="ipv6" table="filter" chain="OUTPUT" priority="10">-p tcp --sport 22 -j ACCEPT</rule>
  <rule ipv="ipv6" table="filter" chain="OUTPUT" priority="10">-o lo -j ACCEPT</rule>
  <rule ipv="ipv6" table="filter" chain="OUTPUT" priority="10">-p udp --dport 53 -j ACCEPT</rule>
  <rule ipv="ipv6" table="filter" chain="OUTPUT" priority="10">-p tcp --dport 53 -j ACCEPT</rule>
  <rule ipv="ipv6" table="filter" chain="OUTPUT" priority="10">-p ipv6-icmp -j ACCEPT</rule>
  <rule ipv="ipv6" table="filter" chain="OUTPUT" priority="99">-j REJECT</rule>
</direct>
"""  # noqa: E501 (direct.xml as the host wrote it)


def firewalld_direct_deny(lab: Any, host: str) -> None:
    """The pre-0.9 way: a default-deny egress made of permanent direct rules."""
    lab.start_service(host, "firewalld")
    sh(lab, host, ["sh", "-c", "cat > /etc/firewalld/direct.xml"], input=DENY_DIRECT)
    sh(lab, host, ["firewall-cmd", "--reload"])


def firewalld_reset(lab: Any, host: str) -> None:
    lab.stop_service(host, "dbus")  # firewalld first; CleanupOnExit removes its table
    lab.run(host, ["sh", "-c", "rm -f /etc/firewalld/policies/* /etc/firewalld/ipsets/* /etc/firewalld/direct.xml"])
    clean_host(lab, host)


UNRELATED = "host-own-unrelated-rule"


def ufw_default_deny(lab: Any, host: str) -> None:
    for argv in (["ufw", "allow", "in", "22/tcp"], ["ufw", "allow", "out", "proto", "tcp", "from", "any", "port", "22"],
                 ["ufw", "allow", "out", "53"], ["ufw", "default", "deny", "outgoing"],
                 ["ufw", "allow", "out", "9999/tcp", "comment", UNRELATED]):
        sh(lab, host, argv)
    lab.start_service(host, "ufw")


def ufw_reset(lab: Any, host: str) -> None:
    lab.run(host, ["ufw", "--force", "reset"], timeout=60)
    lab.run(host, ["sh", "-c", "rm -f /etc/ufw/*.rules.20* /etc/ufw/*.20*"])
    lab.stop_service(host, "ufw")
    clean_host(lab, host)


# Keeps the established SSH session, refuses new ones: a confirmation over a fresh connection cannot get in, so the
# rollback must fire by itself.
BLOCK_NEW_SSH = """
table inet pn_block_ssh {
    chain input {
        type filter hook input priority -10; policy accept;
        ct state new tcp dport 22 drop
    }
}
"""


def path_failures(result: Mapping[str, Any]) -> List[Any]:
    """(path id, failure class, stage) of every path of a probe result: what an assertion message should show."""
    return [(p["id"], p["failure"] and p["failure"]["class"], p["failure"] and p["failure"]["stage"])
            for p in result["paths"]]


LAB_BROKER4, LAB_BROKER6 = "198.18.1.10", "2001:db8:0:1::10"


def set_epns_address(lab: Any, host: str, ipv4: str) -> None:
    """Make epns.eset.com resolve to another IPv4 address on one host (the lab has brokers on .10 and .11): an
    /etc/hosts entry (IPv6 stays the broker's), which glibc reads before DNS; the broker's own address removes the
    entry, so the name comes from the lab's resolver again."""
    hosts = sh(lab, host, ["cat", "/etc/hosts"])
    lines = [line for line in hosts.splitlines() if line.split()[1:2] != ["epns.eset.com"]]
    if ipv4 != LAB_BROKER4:
        lines += [f"{ipv4} epns.eset.com", f"{LAB_BROKER6} epns.eset.com"]
    sh(lab, host, ["sh", "-c", "cat > /etc/hosts"], input="\n".join(lines) + "\n")


# -- "reboot the firewall": flush the live ruleset and load it the way the distribution does at boot ---------------
IPTABLES_SAVED = {"iptables": "/etc/iptables/rules.v4", "ip6tables": "/etc/iptables/rules.v6"}
IPSETS_SAVED = "/etc/iptables/ipsets"


def _flush_netfilter(lab: Any, host: str) -> None:
    """What the kernel holds at boot: no nftables table, no iptables rule (both variants), no ipset."""
    lab.run(host, ["nft", "flush", "ruleset"])
    for variant in ("legacy", "nft"):
        for base in IPTABLES_SAVED:
            lab.run(host, [f"{base}-{variant}-restore"], input="*filter\n:INPUT ACCEPT [0:0]\n"
                    ":FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n")
    lab.run(host, ["nft", "flush", "ruleset"])  # iptables-nft's tables too
    lab.run(host, ["ipset", "destroy"])


def reboot_firewall(lab: Any, host: str, backend: str, variant: str = "nft") -> None:
    """Flush the live ruleset, then load it from the host's files the way its boot does: nftables.service
    (`nft -f /etc/nftables.conf`), netfilter-persistent with its ipset plugin (ipset restore, then iptables-restore
    and ip6tables-restore of the saved files), firewalld (started from its permanent configuration), ufw (ufw-init
    start, what `ufw enable` runs)."""
    if backend == "firewalld":
        lab.stop_service(host, "firewalld")
    elif backend == "ufw":
        lab.stop_service(host, "ufw")
    _flush_netfilter(lab, host)
    if backend == "nftables":
        sh(lab, host, ["nft", "-f", "/etc/nftables.conf"])
    elif backend == "iptables":
        if lab.run(host, ["test", "-e", IPSETS_SAVED]).returncode == 0:
            sh(lab, host, ["ipset", "restore", "-exist", "-file", IPSETS_SAVED])
        for base, path in IPTABLES_SAVED.items():
            if lab.run(host, ["test", "-e", path]).returncode == 0:
                sh(lab, host, ["sh", "-c", f"{base}-{variant}-restore < {path}"])
    elif backend in ("firewalld", "ufw"):
        lab.start_service(host, backend)
    else:
        raise ValueError(f"no boot for backend {backend!r}")


def reboot_life_cycle(lab: Any, hosts: Mapping[str, Mapping[str, Any]], *, reboot: Callable[[str], None],
                      ruleset: HostCheck, files: HostCheck) -> Dict[str, Any]:
    """The host's own firewall as loaded at boot (probe_boot, ruleset_boot, files_boot) -> apply, persisted by default
    (ruleset_applied) -> reboot (ruleset_rebooted, probe_rebooted) -> state=absent -> reboot (ruleset_absent,
    files_absent, probe_absent). Each host's spec has 'args' (epns_firewall) and 'probe' (epns_probe)."""
    probes = {h: s["probe"] for h, s in hosts.items()}
    rec: Dict[str, Any] = {"hosts": hosts}
    for host in hosts:
        reboot(host)
    rec["probe_boot"] = probe(lab, probes)
    rec["ruleset_boot"] = {h: ruleset(h) for h in hosts}
    rec["files_boot"] = {h: files(h) for h in hosts}
    rec["apply"] = firewall(lab, {h: s["args"] for h, s in hosts.items()})
    rec["ruleset_applied"] = {h: ruleset(h) for h in hosts}
    for host in hosts:
        reboot(host)
    rec["ruleset_rebooted"] = {h: ruleset(h) for h in hosts}
    rec["probe_rebooted"] = probe(lab, probes)
    rec["absent"] = firewall(lab, {h: {"state": "absent", "backend": s["args"].get("backend", "auto")}
                                   for h, s in hosts.items()})
    for host in hosts:
        reboot(host)
    rec["ruleset_absent"] = {h: ruleset(h) for h in hosts}
    rec["files_absent"] = {h: files(h) for h in hosts}
    rec["probe_absent"] = probe(lab, probes)
    return rec


def assert_survives_a_reboot(rec: Mapping[str, Any], *, other_boot_ruleset: Sequence[str] = ()) -> None:
    """Persisted: after the reboot EPNS is reachable on IPv4 and IPv6 with the very ruleset the apply left (except on
    the hosts in other_boot_ruleset, whose saved form differs by design: the caller checks those); after state=absent
    and another reboot the host is as it was (ruleset, files with their modes, EPNS blocked)."""
    for host in rec["hosts"]:
        assert rec["probe_boot"][host]["verdict"] == "unreachable", (host, path_failures(rec["probe_boot"][host]))
        applied = rec["apply"][host]
        assert not applied.get("failed") and applied["changed"] is True, applied.get("msg")
        if host not in other_boot_ruleset:
            assert rec["ruleset_rebooted"][host] == rec["ruleset_applied"][host], host
        rebooted = rec["probe_rebooted"][host]
        assert rebooted["verdict"] == "reachable", (host, path_failures(rebooted))
        for path in rebooted["paths"]:
            assert {a["family"] for a in path["attempts"] if a["ok"]} == {"ipv4", "ipv6"}, (host, path["id"])
        assert rec["absent"][host]["changed"] is True, rec["absent"][host].get("msg")
        assert rec["ruleset_absent"][host] == rec["ruleset_boot"][host], host
        assert rec["files_absent"][host] == rec["files_boot"][host], host
        assert rec["probe_absent"][host]["verdict"] == "unreachable", host
