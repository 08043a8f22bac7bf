# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The firewalld backend (firewalld 0.9+: policy objects). Layout:
#
#   policy protectnet_epns          HOST -> ANY, target CONTINUE, priority -32768 (before any other policy)
#     rule family="ipv4" destination ipset="protectnet_epns_epns_v4" port port="8883" protocol="tcp" accept
#     (one rich rule per group, family and port)
#   ipset protectnet_epns_<group>_v4 (hash:net, family=inet) and _v6 (family=inet6), both always present
#
# firewalld cannot create a policy or an ipset in the runtime configuration alone, and one `firewall-cmd` call
# costs 0.2-0.5 s. So a structural change (objects or rules) is made by writing our whole XML objects into the
# permanent configuration (/etc/firewalld/policies, /etc/firewalld/ipsets), `--check-config`, one `--reload`
# (established connections are kept), and then putting those files back as they were: the plan changes only the
# runtime, persist() writes the files (so a rollback that is never confirmed, or persist: false, leaves nothing on
# disk). An address change alone is a runtime `--ipset ... --add-entry/--remove-entry` (no reload) plus the
# rewritten ipset file. We never use `firewall-cmd --permanent`, which leaves *.xml.old backups behind.
#
# Direct mode (firewalld older than 0.9, or firewalld_mode: direct): firewalld's direct interface instead of a policy,
#
#   chain ipv4|ipv6 filter PROTECTNET_EPNS
#   rule  ipv4 filter OUTPUT 0 -m comment --comment "protectnet_epns jump" -j PROTECTNET_EPNS
#   rule  ipv4 filter PROTECTNET_EPNS 0 -p tcp -m set --match-set protectnet_epns_epns_v4 dst -m multiport
#         --dports 443,8883 -m comment --comment "protectnet_epns epns ipv4 tcp 443,8883" -j ACCEPT
#
# with the same ipsets (firewalld 0.4+; without ipsets one rule per network, `-d NET`). The permanent direct
# configuration is /etc/firewalld/direct.xml, a file shared with the host: we edit only our own lines in it (all
# name PROTECTNET_EPNS), inserted right after <direct> so that, at equal priority, ours come first. Structural
# changes go through the same staging + one reload as the policy mode; without ipsets an address change is
# runtime `--direct --add-rule/--remove-rule` of the affected rules (no reload).
#
# Owners: the default tag (protectnet_epns) is epns_firewall's; wol_multicast passes its own tag in
# BackendOptions.options['tag'] and gets its own policy (protectnet_wol, priority -32767), ipsets (protectnet_wol_*),
# direct chain (PROTECTNET_WOL) and rules for UDP (Group.proto). Each owner reads, changes and removes only its own
# objects and its own lines of direct.xml. firewalld cannot rewrite a TTL.
from __future__ import annotations

import glob
import os
import re
import shlex
import typing as t
from xml.sax.saxutils import escape, quoteattr

from .._host._files import FileChange, read_text
from .._host._run import Command, CommandError, Runner
from ._base import (
    BackendOptions,
    Detection,
    FirewallBackend,
    Plan,
    Planned,
    Step,
    file_change,
    planned_text,
)
from ._firewalld_text import (
    DEFAULT_NAMES,
    DIRECT_PRIORITY,
    NETWORKS,
    TARGET,
    Names,
    direct_comment,
    direct_rule_args,
    direct_rule_key,
    join_args,
    jump_args,
    merge_direct_xml,
    parse_info,
    policy_spec,
    rich_rule,
    split_direct_key,
)
from ._model import (
    FAMILIES,
    TAG,
    FirewallError,
    Policy,
    State,
    canonical_element,
    diff,
    element_sort_key,
)

CONFIG_DIR = "/etc/firewalld"
IPSET_FAMILY = {"ipv4": "inet", "ipv6": "inet6"}
MODES = ("auto", "policy", "direct")
POLICY_VERSION = (0, 9)  # policy objects
IPSET_VERSION = (0, 4)  # ipsets
CHECK_CONFIG_VERSION = (0, 4, 4)  # firewall-cmd --check-config

_RICH_RE = re.compile(r'^rule family="(?P<family>ipv4|ipv6)" destination ipset="(?P<ipset>[^"]+)" '
                      r'port port="(?P<port>\d+)" protocol="(?P<proto>tcp|udp)" accept$')


def parse_version(text: str) -> t.Optional[t.Tuple[int, ...]]:
    """`firewall-cmd --version` output (`1.3.3`, `0.8.6`) -> (1, 3, 3); None when unreadable."""
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text.strip().splitlines()[-1] if text.strip() else "")
    return tuple(int(g) for g in match.groups() if g is not None) if match else None


def pick_mode(wanted: str, version: t.Optional[t.Tuple[int, ...]]) -> str:
    """policy or direct: auto takes policy objects when this firewalld has them (0.9+, or an unknown version)."""
    if wanted not in MODES:
        raise FirewallError(f"firewalld_mode {wanted!r} is unknown (expected one of {', '.join(MODES)})")
    has_policies = version is None or version >= POLICY_VERSION
    if wanted == "policy" and not has_policies:
        raise FirewallError(f"backend firewalld: firewalld {version_text(version)} has no policy objects "
                            "(0.9 or later is needed); use firewalld_mode direct (or auto) on this host")
    if wanted == "auto":
        return "policy" if has_policies else "direct"
    return wanted


def version_text(version: t.Optional[t.Tuple[int, ...]]) -> str:
    return ".".join(str(n) for n in version) if version else "(unknown version)"


class FirewalldBackend(FirewallBackend):
    name = "firewalld"

    def __init__(self, runner: Runner, options: t.Optional[BackendOptions] = None) -> None:
        super().__init__(runner, options)
        self.names = Names(str(self.options.get("tag", TAG)))

    # -- detection -------------------------------------------------------------------------------------------
    @classmethod
    def detect(cls, runner: Runner) -> Detection:
        found = Detection(cls.name)
        fc = runner.which("firewall-cmd")
        if not fc:
            found.detail = "firewall-cmd is not installed (package firewalld)"
            return found
        found.installed = True
        rc, out, err = runner.run([fc, "--state"])
        state = (out or err).strip().splitlines()[-1:] or ["no answer"]
        if rc != 0 or state[0] != "running":
            found.detail = (f"the firewalld daemon is not running (firewall-cmd --state: {state[0]}); start it "
                            "(systemctl start firewalld) or choose another backend")
            return found
        found.usable = found.active = True
        found.owns = os.path.exists(cls.policy_path()) or DEFAULT_NAMES.chain in (read_text(cls.direct_path()) or "")
        found.detail = "firewalld is running" + (", the EPNS objects are in its configuration" if found.owns else "")
        return found

    # -- paths -----------------------------------------------------------------------------------------------
    @staticmethod
    def policy_path(names: Names = DEFAULT_NAMES) -> str:
        return f"{CONFIG_DIR}/policies/{names.policy}.xml"

    @staticmethod
    def ipset_path(name: str) -> str:
        return f"{CONFIG_DIR}/ipsets/{name}.xml"

    def _fc(self) -> str:
        return self._tool("firewall-cmd", "firewall-cmd is not installed")

    # -- reading ---------------------------------------------------------------------------------------------
    def capabilities(self) -> t.Dict[str, t.Any]:
        """firewalld's version and what it has: {'version', 'mode' (policy|direct), 'ipsets', 'check_config'}."""
        fc = self._fc()
        _rc, out, err = self.runner.run([fc, "--version"])
        version = parse_version(out or err)
        mode = pick_mode(str(self.options.get("firewalld_mode", "auto")), version)
        ipsets = (version is None or version >= IPSET_VERSION) and self.options.get("ipset", True) is not False
        if mode == "direct" and version is not None and version >= POLICY_VERSION:
            self.warnings.append(
                f"firewalld_mode direct on firewalld {version_text(version)}: the direct rules open EPNS in iptables "
                "only; a reject or drop in firewalld's own policies or zones (nftables backend) still applies")
        return {"version": version_text(version), "mode": mode, "ipsets": ipsets,
                "policies": version is None or version >= POLICY_VERSION,
                "check_config": version is None or version >= CHECK_CONFIG_VERSION}

    def read_current(self) -> State:
        """The runtime configuration (what is in force); read-only firewall-cmd queries. Reads our objects of both
        modes (so switching the mode removes the other one's)."""
        fc = self._fc()
        caps = self.capabilities()
        state = State(meta=dict(caps))
        if caps["policies"]:
            self._read_policy(fc, state, caps)
        self._read_direct(fc, state)
        if caps["ipsets"] or caps["policies"]:
            names = self.runner.check([fc, "--get-ipsets"], what="listing the firewalld ipsets").split()
            for name in sorted(n for n in names if n.startswith(self.names.tag + "_")):
                info = parse_info(self.runner.check([fc, "--info-ipset", name], what=f"reading ipset {name}"))
                state.containers[f"ipset {name}"] = f"{info.get('type', '')} {info.get('options', '')}".strip()
                state.sets[f"ipset {name}"] = frozenset(canonical_element(e)
                                                        for e in info.get("entries", "").split())
        return state

    def _read_policy(self, fc: str, state: State, caps: t.Dict[str, t.Any]) -> None:
        policy = self.names.policy
        rc, out, err = self.runner.run([fc, "--info-policy", policy])
        if rc == 0:
            info = parse_info(out)
            extra = ", ".join(f"{k}: {v}" for k, v in sorted(info.items())
                              if k not in ("name", "priority", "target", "ingress-zones", "egress-zones",
                                           "rich rules", "masquerade") and v)
            if info.get("masquerade", "no") != "no":
                extra = ", ".join(filter(None, [extra, f"masquerade: {info['masquerade']}"]))
            state.containers[f"policy {policy}"] = policy_spec(info.get("ingress-zones", ""),
                                                               info.get("egress-zones", ""),
                                                               info.get("target", ""), info.get("priority", ""),
                                                               extra)
            for rule in info.get("rich rules", []):
                key = f"policy {policy}: {rule}"
                n = 2
                while key in state.rules:
                    key = f"policy {policy}: {rule} #{n}"
                    n += 1
                state.rules[key] = rule
        elif "unrecognized arguments" in err or "no such option" in err:
            # an unknown version without policy objects: direct rules instead (policy mode fails)
            caps["policies"] = False
            state.meta["policies"] = False
            if str(self.options.get("firewalld_mode", "auto")) == "policy":
                raise FirewallError("backend firewalld: this firewalld has no policy objects (firewalld 0.9 or "
                                    "later is needed); use firewalld_mode direct (or auto) on this host")
            caps["mode"] = state.meta["mode"] = "direct"
        elif "INVALID_POLICY" not in out + err:
            raise CommandError([fc, "--info-policy", policy], rc, out, err, "reading the firewalld policy")

    def _read_direct(self, fc: str, state: State) -> None:
        own_chain = self.names.chain
        out = self.runner.check([fc, "--direct", "--get-all-rules"], what="listing the firewalld direct rules")
        for line in out.splitlines():
            try:
                words = shlex.split(line)
            except ValueError:
                continue
            if len(words) < 5:
                continue
            ipv, table, chain, priority, args = words[0], words[1], words[2], words[3], words[4:]
            comment = direct_comment(args)
            if chain != own_chain and args[-2:] != ["-j", own_chain] and not (
                    comment == self.names.tag or comment.startswith(self.names.tag + " ")):
                continue
            key = direct_rule_key(ipv, table, chain, priority, args)
            network = next((args[i + 1] for i, a in enumerate(args[:-1]) if a == "-d"), None)
            if chain == own_chain and network is not None and "--match-set" not in args:
                # no ipsets: one rule per network; the State holds the rule once and its networks as a set
                template = [NETWORKS if i > 0 and args[i - 1] == "-d" else a for i, a in enumerate(args)]
                state.rules[key] = join_args(template)
                state.sets[key] = state.sets.get(key, frozenset()) | {canonical_element(network)}
                continue
            n, base = 2, key
            while key in state.rules:
                key = f"{base} #{n}"
                n += 1
            state.rules[key] = join_args(args)
        chains = self.runner.check([fc, "--direct", "--get-all-chains"], what="listing the firewalld direct chains")
        for line in chains.splitlines():
            words = line.split()
            if len(words) == 3 and words[2] == own_chain:
                state.containers[f"direct chain {' '.join(words)}"] = " ".join(words)

    # -- desired ---------------------------------------------------------------------------------------------
    def compute_desired(self, policy: Policy, current: State) -> State:
        caps = dict(current.meta) or self.capabilities()
        desired = State(meta=dict(caps))
        names = self.names
        if caps["mode"] == "policy":
            desired.containers[f"policy {names.policy}"] = policy_spec(priority=names.priority)
        else:
            for family in FAMILIES:
                ipv = family
                desired.containers[f"direct chain {ipv} filter {names.chain}"] = f"{ipv} filter {names.chain}"
                jump = jump_args(names)
                desired.rules[direct_rule_key(ipv, "filter", "OUTPUT", DIRECT_PRIORITY, jump)] = join_args(jump)
        for group in policy.groups:
            for family in FAMILIES:
                name = names.set_name(group.name, family)
                if caps["mode"] == "direct":
                    args = direct_rule_args(group.name, family, group.ports, caps["ipsets"], proto=group.proto,
                                            names=names)
                    key = direct_rule_key(family, "filter", names.chain, DIRECT_PRIORITY, args)
                    if not caps["ipsets"]:
                        networks = frozenset(group.addresses(family))
                        if networks:  # a rule per network: none without networks
                            desired.rules[key] = join_args(args)
                            desired.sets[key] = networks
                        continue
                    desired.rules[key] = join_args(args)
                desired.containers[f"ipset {name}"] = f"hash:net family={IPSET_FAMILY[family]}"
                desired.sets[f"ipset {name}"] = frozenset(group.addresses(family))
                if caps["mode"] == "policy":
                    for port in group.ports:
                        rule = rich_rule(group.name, family, port, group.proto, names)
                        desired.rules[f"policy {names.policy}: {rule}"] = rule
        return desired

    # -- direct rules ----------------------------------------------------------------------------------------
    @staticmethod
    def direct_path() -> str:
        return f"{CONFIG_DIR}/direct.xml"

    @staticmethod
    def direct_lines(state: State) -> t.List[str]:
        """Our direct.xml lines for a State: chains, then rules (a no-ipset rule once per network)."""
        lines = []
        for key in sorted(k for k in state.containers if k.startswith("direct chain ")):
            ipv, table, chain = key.split()[2:5]
            lines.append(f"  <chain ipv={quoteattr(ipv)} table={quoteattr(table)} chain={quoteattr(chain)}/>")
        for key in sorted(k for k in state.rules if k.startswith("direct ")):
            ipv, table, chain, priority = split_direct_key(key)
            texts = ([state.rules[key].replace(NETWORKS, n) for n in sorted(state.sets[key], key=element_sort_key)]
                     if key in state.sets else [state.rules[key]])
            lines += [f"  <rule ipv={quoteattr(ipv)} table={quoteattr(table)} chain={quoteattr(chain)} "
                      f"priority={quoteattr(priority)}>{escape(text)}</rule>" for text in texts]
        return lines

    def _direct_rule_command(self, fc: str, key: str, text: str, network: str, add: bool) -> Command:
        ipv, table, chain, priority = split_direct_key(key)
        args = shlex.split(text.replace(NETWORKS, network))
        return Command((fc, "--direct", "--add-rule" if add else "--remove-rule", ipv, table, chain, priority,
                        *args))

    # -- files (whole XML objects) -----------------------------------------------------------------------------
    def render_files(self, state: State) -> t.Dict[str, str]:
        """Our permanent XML objects for a State: path -> content."""
        files: t.Dict[str, str] = {}
        if state.empty:
            return files
        for key in sorted(k for k in state.sets if k.startswith("ipset ")):
            name = key.split(" ", 1)[1]
            family = "inet6" if name.endswith("_v6") else "inet"
            lines = ['<?xml version="1.0" encoding="utf-8"?>', '<ipset type="hash:net">',
                     f"  <short>{self.names.tag}</short>",
                     f"  <description>{self.names.what} addresses (managed by {self.names.creator})</description>",
                     f'  <option name="family" value="{family}"/>']
            lines += [f"  <entry>{escape(e)}</entry>" for e in sorted(state.sets[key], key=element_sort_key)]
            lines.append("</ipset>")
            files[self.ipset_path(name)] = "\n".join(lines) + "\n"
        if f"policy {self.names.policy}" in state.containers:
            lines = ['<?xml version="1.0" encoding="utf-8"?>',
                     f'<policy target="{TARGET}" priority="{self.names.priority}">',
                     f"  <short>{self.names.tag}</short>",
                     f"  <description>{self.names.what} (managed by {self.names.creator})</description>",
                     '  <ingress-zone name="HOST"/>', '  <egress-zone name="ANY"/>']
            for rule in sorted(state.rules.values()):
                match = _RICH_RE.match(rule)
                if not match:
                    continue  # a rule of another shape in our policy: not rendered, so it goes
                lines += [f"  <rule family={quoteattr(match['family'])}>",
                          f"    <destination ipset={quoteattr(match['ipset'])}/>",
                          f"    <port port={quoteattr(match['port'])} protocol={quoteattr(match['proto'])}/>",
                          "    <accept/>", "  </rule>"]
            lines.append("</policy>")
            files[self.policy_path(self.names)] = "\n".join(lines) + "\n"
        return files

    def own_paths_on_disk(self) -> t.List[str]:
        paths = [p for p in [self.policy_path(self.names)] if os.path.exists(p)]
        paths += sorted(glob.glob(f"{CONFIG_DIR}/ipsets/{self.names.tag}_*.xml"))
        return paths

    def _write(self, path: str, content: t.Optional[str]) -> Command:
        if content is None:
            return Command((self.runner.which("rm") or "rm", "-f", path))
        return Command((self.runner.which("tee") or "tee", path), content)

    # -- planning ----------------------------------------------------------------------------------------------
    def plan(self, current: State, desired: State) -> Plan:
        change = diff(current, desired)
        if not change.changed:
            return Plan()
        fc = self._fc()
        steps: t.List[Step] = []
        if change.sets_only:
            # addresses only: runtime entries (adds before removes), no reload; persist() rewrites the ipset files
            for key in sorted(change.sets_changed):
                name = key.split(" ", 1)[1]
                update = change.sets_changed[key]
                if key.startswith("direct "):  # no ipsets: the affected per-network rules, adds first
                    text = desired.rules[key]
                    for network in sorted(update.added, key=element_sort_key):
                        steps.append(Step(self._direct_rule_command(fc, key, text, network, True),
                                          [self._direct_rule_command(fc, key, text, network, False)],
                                          f"adding the direct rule for {network}"))
                    for network in sorted(update.removed, key=element_sort_key):
                        steps.append(Step(self._direct_rule_command(fc, key, text, network, False),
                                          [self._direct_rule_command(fc, key, text, network, True)],
                                          f"removing the direct rule for {network}"))
                    continue
                adds = [a for e in update.added for a in ("--add-entry", e)]
                dels = [a for e in update.removed for a in ("--remove-entry", e)]
                undo_adds = [a for e in update.added for a in ("--remove-entry", e)]
                undo_dels = [a for e in update.removed for a in ("--add-entry", e)]
                if adds:
                    undo = [Command((fc, "--ipset", name, *undo_adds))]
                    steps.append(Step(Command((fc, "--ipset", name, *adds)), undo,
                                      f"adding addresses to ipset {name}"))
                if dels:
                    undo = [Command((fc, "--ipset", name, *undo_dels))]
                    steps.append(Step(Command((fc, "--ipset", name, *dels)), undo,
                                      f"removing addresses from ipset {name}"))
            return Plan(steps)
        # structural: load our whole objects through the permanent configuration, reload once, put the files back
        target = self.render_files(desired)
        paths = sorted(set(target) | set(self.render_files(current)) | set(self.own_paths_on_disk()))
        on_disk = {p: read_text(p) for p in paths}
        changed = [p for p in paths if target.get(p) != on_disk[p]]
        direct = self.direct_path()
        on_disk[direct] = read_text(direct)
        staged_direct = merge_direct_xml(on_disk[direct], self.direct_lines(desired), self.names)
        if staged_direct != on_disk[direct]:
            target[direct] = staged_direct  # type: ignore[assignment]
            changed.append(direct)
        reload_cmd = Command((fc, "--reload"))
        for i, path in enumerate(changed):
            undo = [self._write(path, on_disk[path])] + ([reload_cmd] if i == 0 else [])
            steps.append(Step(self._write(path, target.get(path)), undo, f"staging {path}"))
        if (current.meta or desired.meta).get("check_config", True):
            steps.append(Step(Command((fc, "--check-config")), [], "firewall-cmd --check-config"))
        steps.append(Step(reload_cmd, [], "firewall-cmd --reload"))
        for path in changed:
            steps.append(Step(self._write(path, on_disk[path]), [self._write(path, target.get(path))],
                              f"restoring {path} (persistence writes it)"))
        return Plan(steps)

    # -- persistence -------------------------------------------------------------------------------------------
    def persist(self, desired: State, planned: Planned = None) -> t.List[FileChange]:
        """firewalld's permanent configuration: our XML objects (none with persist: false or state=absent)."""
        target: t.Dict[str, t.Optional[str]] = dict(self.render_files(desired)) if self.options.persist else {}
        paths = sorted(set(target) | set(self.own_paths_on_disk()))
        direct = self.direct_path()
        before = planned_text(direct, planned)
        target[direct] = merge_direct_xml(before, self.direct_lines(desired) if self.options.persist else [],
                                          self.names)
        if target[direct] != before:
            paths.append(direct)
        return [c for c in (file_change(p, target.get(p), planned=planned) for p in paths) if c.changed]
