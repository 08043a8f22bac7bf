# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The iptables backend (IPv4 with iptables, IPv6 with ip6tables; the legacy or the nf_tables variant). Layout:
#
#   filter table, per family:
#     -I OUTPUT 1 -m comment --comment "protectnet_epns jump" -j PROTECTNET_EPNS
#     :PROTECTNET_EPNS
#       -A PROTECTNET_EPNS -p tcp -m set --match-set protectnet_epns_epns_v4 dst -m multiport --dports 443,8883
#          -m comment --comment "protectnet_epns epns ipv4 tcp 443,8883" -j ACCEPT
#   ipsets (when the ipset tool works): protectnet_epns_<group>_v4 (hash:net family inet) and _v6 (inet6)
#
# Without ipset, the chain holds one rule per network (-d NET) and an address change rewrites our chain only.
# Changes go through iptables-restore --noflush (one atomic commit per table; a declared user chain is flushed
# and refilled) and `ipset -exist restore` (adds before deletes, so the set never lacks a wanted address).
# Each step carries its undo: a failure part-way undoes the steps already done.
#
# Owners: the default tag (protectnet_epns) is epns_firewall's. Another capability (wol_multicast) passes its own tag
# in Settings.options['tag'] and gets its own chain (the tag upper-cased: PROTECTNET_WOL), jump comment, rule
# comments, ipsets and persisted lines; two owners never see, change or remove each other's objects. Groups may be
# UDP (Group.proto). A TTL/hop-limit rewrite (Group.ttl) is not done by this backend (it would need the mangle table
# and the TTL/HL targets): a warning says so, and the TTL stays what the sending program sets.
from __future__ import annotations

import os
import re
import typing as t

from .._host._files import FileChange
from .._host._run import Command, Runner
from ._base import Detection, FirewallBackend, Plan, Planned, Settings, Step, file_change, planned_text
from ._model import FAMILIES, TAG, FirewallError, Policy, State, canonical_element, check_owner_tag, diff

BASE = {"ipv4": "iptables", "ipv6": "ip6tables"}
IPSET_FAMILY = {"ipv4": "inet", "ipv6": "inet6"}
SUFFIX = {"ipv4": "v4", "ipv6": "v6"}
VARIANTS = ("legacy", "nft")
FIRST = " [first in chain]"
CREATED_MARK = "# Created by protectnet.epns.epns_firewall (EPNS egress); other rules may be added below."
CREATED_PREFIX = "# Created by protectnet.epns"  # any owner's mark: a file one owner created is "ours" for all

_COMMENT_TAIL = r" (?P<group>[a-z0-9]+) (?P<family>ipv4|ipv6) (?P<proto>tcp|udp) (?P<ports>[0-9,]+)$"
_COMMENT_RE = re.compile(r"^" + TAG + _COMMENT_TAIL)
_OWNER_CHAIN_RE = re.compile(r"^(?::(PROTECTNET_\w+)(?: |$)|-A (PROTECTNET_\w+) |-A OUTPUT .* -j (PROTECTNET_\w+)$)")
_COMMENT_ARG_RE = re.compile(r'--comment (?:"((?:[^"\\]|\\.)*)"|(\S+))')
_DEST_RE = re.compile(r"(?:^| )-d (\S+)")
_MATCH_SET_RE = re.compile(r"--match-set (\S+) dst")

PERSIST_PATHS = {
    "debian": {"ipv4": "/etc/iptables/rules.v4", "ipv6": "/etc/iptables/rules.v6", "ipset": "/etc/iptables/ipsets"},
    "redhat": {"ipv4": "/etc/sysconfig/iptables", "ipv6": "/etc/sysconfig/ip6tables",
               "ipset": "/etc/sysconfig/ipset"},
}
# The mode the distribution's own save gives a new saved-rules file (netfilter-persistent: 0640; EL's
# iptables/ipset services: 0600); a file found keeps its own.
PERSIST_MODE = {"debian": 0o640, "redhat": 0o600}
IPSET_PERSIST_MARKERS = {"debian": ("/usr/share/netfilter-persistent/plugins.d/10-ipset",),
                         "redhat": ("/usr/libexec/ipset/ipset.start-stop", "/usr/lib/systemd/system/ipset.service")}
RULES_LOADERS = {"debian": ("/usr/sbin/netfilter-persistent", "/sbin/netfilter-persistent"),
                 "redhat": ("/usr/libexec/iptables/iptables.init", "/usr/lib/systemd/system/iptables.service")}


class Names:
    """The names one owner uses in iptables: chain, jump, comments, ipsets, the mark of a file it creates."""

    def __init__(self, tag: str = TAG) -> None:
        self.tag = check_owner_tag(tag, 28)
        self.chain = "PROTECTNET_EPNS" if tag == TAG else tag.upper()
        self.jump_comment = f"{tag} jump"
        self.jump_spec = f'-m comment --comment "{self.jump_comment}" -j {self.chain}'
        self.ipset_prefix = tag + "_"
        self.comment_re = _COMMENT_RE if tag == TAG else re.compile(r"^" + re.escape(tag) + _COMMENT_TAIL)
        self.created_mark = CREATED_MARK if tag == TAG else \
            f"# Created by protectnet.epns ({tag}); other rules may be added below."

    def ours(self, line: str) -> bool:
        chain = self.chain
        comment = _comment_of(line)
        return (line.startswith((f"-A {chain} ", f":{chain} ")) or line.rstrip() == f":{chain}"
                or line.rstrip().endswith(f" -j {chain}")
                or (comment.startswith(self.tag) if self.tag == TAG else
                    comment == self.tag or comment.startswith(self.tag + " ")))


DEFAULT_NAMES = Names()
CHAIN = DEFAULT_NAMES.chain
JUMP_COMMENT = DEFAULT_NAMES.jump_comment
JUMP_SPEC = DEFAULT_NAMES.jump_spec


def ipset_name(group: str, family: str, names: Names = DEFAULT_NAMES) -> str:
    return f"{names.ipset_prefix}{group}_{SUFFIX[family]}"


def rule_comment(group: str, family: str, ports: t.Sequence[int], proto: str = "tcp",
                 names: Names = DEFAULT_NAMES) -> str:
    return f"{names.tag} {group} {family} {proto} {','.join(str(p) for p in ports)}"


def _comment_of(line: str) -> str:
    match = _COMMENT_ARG_RE.search(line)
    if not match:
        return ""
    return match.group(1) if match.group(1) is not None else match.group(2)


def _ours(line: str, names: t.Optional[Names] = None) -> bool:
    return (names or DEFAULT_NAMES).ours(line)


def _owner_chain(line: str) -> t.Optional[str]:
    """The chain of the protectnet owner (any tag) a saved-rules line belongs to, else None."""
    match = _OWNER_CHAIN_RE.match(line.strip())
    if not match:
        return None
    return match.group(1) or match.group(2) or match.group(3)


def filter_section(save_output: str) -> t.List[str]:
    """The lines of the *filter table in iptables-save output ([] when the table is not loaded)."""
    lines: t.List[str] = []
    inside = False
    for raw in save_output.splitlines():
        line = raw.rstrip()
        if line.startswith("*"):
            inside = line == "*filter"
            continue
        if inside:
            if line == "COMMIT":
                inside = False
                continue
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def has_content(save_output: str, ignore_ours: bool = True, names: t.Optional[Names] = None
                ) -> t.Tuple[bool, bool]:
    """(any rule or non-ACCEPT policy in any table, a DROP/REJECT egress in filter OUTPUT), ignoring ours."""
    content = deny = False
    table = ""
    for raw in save_output.splitlines():
        line = raw.strip()
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":"):
            parts = line[1:].split()
            if len(parts) > 1 and parts[1] not in ("ACCEPT", "-"):
                content = True
                if table == "filter" and parts[0] == "OUTPUT" and parts[1] == "DROP":
                    deny = True
        elif line.startswith("-A "):
            if ignore_ours and _ours(line, names):
                continue
            content = True
            if table == "filter" and (line == "-A OUTPUT -j DROP" or line.startswith("-A OUTPUT -j REJECT")):
                deny = True
    return content, deny


class IptablesBackend(FirewallBackend):
    name = "iptables"

    def __init__(self, runner: Runner, settings: t.Optional[Settings] = None) -> None:
        super().__init__(runner, settings)
        self.names = Names(str(self.settings.get("tag", TAG)))

    # -- tools -----------------------------------------------------------------------------------------------
    @staticmethod
    def default_variant(runner: Runner) -> t.Optional[str]:
        binary = runner.which("iptables")
        if not binary:
            return None
        _rc, out, err = runner.run([binary, "-V"])
        return "nft" if "nf_tables" in out + err else "legacy"

    @classmethod
    def tools(cls, runner: Runner, variant: str) -> t.Dict[str, t.Tuple[str, str]]:
        """family -> (save, restore) for one variant; missing families are left out."""
        found: t.Dict[str, t.Tuple[str, str]] = {}
        default = cls.default_variant(runner)
        for family, base in BASE.items():
            save = runner.which(f"{base}-{variant}-save")
            restore = runner.which(f"{base}-{variant}-restore")
            if not (save and restore) and default == variant:
                save, restore = runner.which(f"{base}-save"), runner.which(f"{base}-restore")
            if save and restore:
                found[family] = (save, restore)
        return found

    @classmethod
    def survey(cls, runner: Runner, names: t.Optional[Names] = None) -> t.Dict[str, t.Dict[str, t.Any]]:
        """Per variant: the tools and what iptables-save shows (read-only: never loads a table); `owns`: objects of
        the owner `names` (default: epns_firewall's)."""
        result: t.Dict[str, t.Dict[str, t.Any]] = {}
        for variant in VARIANTS:
            tools = cls.tools(runner, variant)
            if not tools:
                continue
            outputs = {}
            for family, (save, _restore) in tools.items():
                rc, out, _err = runner.run([save])
                outputs[family] = out if rc == 0 else ""
            text = "\n".join(outputs.values())
            content, deny = has_content(text, names=names)
            owns = any(_ours(line, names) for line in text.splitlines())
            result[variant] = {"tools": tools, "content": content, "deny": deny, "owns": owns}
        return result

    @classmethod
    def detect(cls, runner: Runner) -> Detection:
        found = Detection(cls.name)
        survey = cls.survey(runner)
        if not survey:
            found.detail = "iptables-save/iptables-restore are not installed (package iptables)"
            return found
        found.installed = found.usable = True
        found.owns = any(v["owns"] for v in survey.values())
        found.deny = any(v["deny"] for v in survey.values())
        found.active = any(v["content"] for v in survey.values())
        found.detail = "; ".join(
            f"{variant}: " + ("rules present" if v["content"] else "no rules")
            + (", default-deny egress" if v["deny"] else "")
            for variant, v in survey.items())
        return found

    def variant(self) -> str:
        cached = getattr(self, "_variant", None)
        if cached:
            return str(cached)
        wanted = str(self.settings.get("iptables_variant", "auto"))
        survey = self.survey(self.runner, self.names)
        if wanted != "auto":
            if wanted not in survey:
                raise FirewallError(f"iptables_variant {wanted}: iptables-{wanted}-save/-restore are not installed "
                                    f"(found: {', '.join(survey) or 'none'})")
            chosen = wanted
        elif not survey:
            raise FirewallError("backend iptables: iptables-save/iptables-restore are not installed")
        else:
            owning = [v for v in survey if survey[v]["owns"]]
            busy = [v for v in survey if survey[v]["content"]]
            default = self.default_variant(self.runner)
            if owning:
                chosen = owning[0]
            elif len(busy) == 1:
                chosen = busy[0]
            elif default in survey:
                chosen = str(default)
            else:
                chosen = next(iter(survey))
        self._variant = chosen
        self._tools = survey[chosen]["tools"]
        return chosen

    def families(self) -> t.List[str]:
        self.variant()
        return [f for f in FAMILIES if f in self._tools]

    def use_ipset(self) -> bool:
        cached = getattr(self, "_ipset", None)
        if cached is not None:
            return bool(cached)
        wanted = self.settings.get("ipset", None)
        binary = self.runner.which("ipset")
        works = bool(binary) and self.runner.run([t.cast(str, binary), "list", "-n"])[0] == 0
        if wanted is True and not works:
            raise FirewallError("ipset: true, but the ipset command is missing or cannot talk to the kernel "
                                "(install the ipset package, or set ipset: false for one rule per network)")
        self._ipset = works if wanted is None else bool(wanted)
        return self._ipset

    # -- reading ---------------------------------------------------------------------------------------------
    def read_current(self) -> State:
        names = self.names
        chain_name = names.chain
        state = State()
        lines_meta: t.Dict[str, str] = {}
        state.meta.update(variant=self.variant(), lines=lines_meta)
        for family in self.families():
            save, _restore = self._tools[family]
            out = self.runner.check([save], what=f"reading the {BASE[family]} ruleset")
            output_rules = 0
            only_ours = True
            for line in filter_section(out):
                if line.startswith(f":{chain_name} ") or line == f":{chain_name}":
                    state.containers[f"{family} chain {chain_name}"] = "filter table"
                    continue
                if not line.startswith("-A "):
                    continue
                chain = line.split()[1]
                if chain == "OUTPUT":
                    output_rules += 1
                if not names.ours(line):
                    if chain == "OUTPUT" and not _owner_chain(line):  # another owner's jump only accepts its own
                        only_ours = False
                    continue
                comment = _comment_of(line)
                key = f"{family} {chain}: {comment or line}"
                if chain == chain_name and names.comment_re.match(comment):
                    match = t.cast(t.Match[str], names.comment_re.match(comment))
                    destination = _DEST_RE.search(line)
                    matched_set = _MATCH_SET_RE.search(line)
                    if destination and not matched_set:
                        set_key = f"{family} rules {match['group']}"
                        elements = set(state.sets.get(set_key, frozenset()))
                        elements.add(canonical_element(destination.group(1)))
                        state.sets[set_key] = frozenset(elements)
                        state.rules[key] = _rule_text(family, match["group"], match["ports"], False,
                                                      match["proto"], names)
                        lines_meta.setdefault(key, line)
                        continue
                    text = _rule_text(family, match["group"], match["ports"], True, match["proto"], names) \
                        if matched_set else line
                elif chain == "OUTPUT" and line == f"-A OUTPUT {names.jump_spec}":
                    text = line + (FIRST if only_ours else " [below other rules]")
                else:
                    text = line
                n = 2
                while key in state.rules:
                    key = f"{family} {chain}: {comment or line} #{n}"
                    n += 1
                state.rules[key] = text
                lines_meta[key] = line
        if self.runner.which("ipset"):
            rc, out, _err = self.runner.run([t.cast(str, self.runner.which("ipset")), "save"])
            if rc == 0:
                for line in out.splitlines():
                    parts = line.split()
                    if len(parts) >= 3 and parts[1].startswith(names.ipset_prefix):
                        family = "ipv6" if "inet6" in parts else "ipv4"
                        if parts[0] == "create":
                            state.containers[f"ipset {parts[1]}"] = f"{parts[2]} family {IPSET_FAMILY[family]}"
                            state.sets.setdefault(f"ipset {parts[1]}", frozenset())
                        elif parts[0] == "add":
                            key = f"ipset {parts[1]}"
                            state.sets[key] = state.sets.get(key, frozenset()) | {canonical_element(parts[2])}
        return state

    # -- desired -------------------------------------------------------------------------------------------
    def compute_desired(self, policy: Policy, current: State) -> State:
        names = self.names
        desired = State()
        with_ipset = self.use_ipset()
        ttl_groups = [g.name for g in policy.groups if g.ttl]
        if ttl_groups:
            self.warnings.append(f"backend iptables does not rewrite the TTL / IPv6 hop limit (group(s) "
                                 f"{', '.join(ttl_groups)}): packets keep the TTL their sender sets (Linux sends "
                                 "multicast with TTL 1 unless the program sets one); use the nftables backend "
                                 "for the rewrite")
        for family in self.families():
            desired.containers[f"{family} chain {names.chain}"] = "filter table"
            desired.rules[f"{family} OUTPUT: {names.jump_comment}"] = f"-A OUTPUT {names.jump_spec}{FIRST}"
            for group in policy.groups:
                comment = rule_comment(group.name, family, group.ports, group.proto, names)
                ports = ",".join(str(p) for p in group.ports)
                desired.rules[f"{family} {names.chain}: {comment}"] = _rule_text(family, group.name, ports,
                                                                                 with_ipset, group.proto, names)
                elements = frozenset(group.addresses(family))
                if with_ipset:
                    name = ipset_name(group.name, family, names)
                    desired.containers[f"ipset {name}"] = f"hash:net family {IPSET_FAMILY[family]}"
                    desired.sets[f"ipset {name}"] = elements
                else:
                    desired.sets[f"{family} rules {group.name}"] = elements
        return desired

    # -- planning ------------------------------------------------------------------------------------------
    def plan(self, current: State, desired: State) -> Plan:
        change = diff(current, desired)
        if not change.changed:
            return Plan()
        self.variant()
        ipset = self.runner.which("ipset") or "ipset"
        steps: t.List[Step] = []
        # 1. ipsets first: new ones created with their members, changed ones updated (adds before deletes)
        for key in sorted(change.sets_added):
            if key.startswith("ipset "):
                name = key.split(" ", 1)[1]
                steps.append(Step(Command((ipset, "-exist", "restore"), _ipset_create(name, desired)),
                                  [Command((ipset, "destroy", name))], f"creating ipset {name}"))
        for key in sorted(change.sets_changed):
            if key.startswith("ipset "):
                name = key.split(" ", 1)[1]
                update = change.sets_changed[key]
                steps.append(Step(Command((ipset, "-exist", "restore"), _ipset_update(name, update.added,
                                                                                      update.removed)),
                                  [Command((ipset, "-exist", "restore"), _ipset_update(name, update.removed,
                                                                                       update.added))],
                                  f"updating ipset {name}"))
        # 2. one iptables-restore --noflush per family (atomic per table)
        for family in FAMILIES:
            forward = self.restore_script(family, current, desired)
            if not forward:
                continue
            if family not in self._tools:
                raise FirewallError(f"backend iptables: {BASE[family]}-restore is not installed")
            _save, restore = self._tools[family]
            backward = self.restore_script(family, current=desired, desired=current)  # the way back
            steps.append(Step(Command((restore, "--noflush"), forward),
                              [Command((restore, "--noflush"), backward)] if backward else [],
                              f"{os.path.basename(restore)} --noflush"))
        # 3. ipsets no longer referenced
        for key in sorted(change.sets_removed):
            if key.startswith("ipset "):
                name = key.split(" ", 1)[1]
                steps.append(Step(Command((ipset, "destroy", name)),
                                  [Command((ipset, "-exist", "restore"), _ipset_create(name, current))],
                                  f"removing ipset {name}"))
        return Plan(steps)

    def restore_script(self, family: str, current: State, desired: State) -> str:
        """iptables-restore --noflush input turning current's filter objects of one family into desired's."""
        prefix = f"{family} "
        cur = _only(current, prefix)
        des = _only(desired, prefix)
        change = diff(cur, des)
        if not change.changed:
            return ""
        names = self.names
        chain_key = f"{family} chain {names.chain}"
        lines: t.List[str] = []
        jump_keys = [k for k in [*change.rules_removed, *change.rules_added] if k.startswith(f"{family} OUTPUT: ")]
        for key in sorted(k for k in change.rules_removed if k.startswith(f"{family} OUTPUT: ")):
            line = current.meta.get("lines", {}).get(key) or f"-A OUTPUT {names.jump_spec}"
            lines.append("-D" + line[2:])
        chain_dirty = any(k for k in [*change.rules_removed, *change.rules_added, *change.sets_changed,
                                      *change.sets_added, *change.sets_removed, *change.containers_added,
                                      *change.containers_removed] if k not in jump_keys)
        if chain_key in des.containers and chain_dirty:
            lines.append(f":{names.chain} - [0:0]")  # creates the chain, or flushes ours to refill it
            lines.extend(chain_lines(desired, family, names))
        elif chain_key not in des.containers and chain_key in cur.containers:
            lines += [f"-F {names.chain}", f"-X {names.chain}"]
        for _key in sorted(k for k in change.rules_added if k.startswith(f"{family} OUTPUT: ")):
            lines.append(f"-I OUTPUT 1 {names.jump_spec}")
        if not lines:
            return ""
        return "*filter\n" + "\n".join(lines) + "\nCOMMIT\n"

    # -- persistence ----------------------------------------------------------------------------------------
    def distro(self) -> str:
        if os.path.exists("/etc/debian_version"):
            return "debian"
        if os.path.exists("/etc/redhat-release") or os.path.isdir("/etc/sysconfig"):
            return "redhat"
        return "debian"

    def persist(self, desired: State, planned: Planned = None) -> t.List[FileChange]:
        distro = self.distro()
        paths = PERSIST_PATHS[distro]
        keep = self.settings.persist and not desired.empty
        persist_ipset = keep and any(k.startswith("ipset ") for k in desired.sets) and any(
            os.path.exists(p) for p in IPSET_PERSIST_MARKERS[distro])
        saved = desired
        if keep and not persist_ipset:
            saved = _without_ipset(desired)  # per-network rules: loadable without an ipset loader at boot
        names = self.names
        changes: t.List[FileChange] = []
        for family in FAMILIES:
            ours = ([f":{names.chain} - [0:0]"], [f"-A OUTPUT {names.jump_spec}"], chain_lines(saved, family, names)) \
                if keep and f"{family} chain {names.chain}" in saved.containers else None
            before = planned_text(paths[family], planned)
            if before is None and ours is None:
                continue
            changes.append(file_change(paths[family], _edit_rules_file(before, ours, names), PERSIST_MODE[distro],
                                       planned=planned))
        ipset_lines = _ipset_save_lines(saved) if persist_ipset else None
        before = planned_text(paths["ipset"], planned)
        if before is not None or ipset_lines:
            changes.append(file_change(paths["ipset"], _edit_ipset_file(before, ipset_lines, names),
                                       PERSIST_MODE[distro], planned=planned))
        if keep and not any(os.path.exists(p) for p in RULES_LOADERS[distro]):
            package = "iptables-persistent" if distro == "debian" else "iptables-services"
            self.warnings.append(f"{paths['ipv4']} is written, but nothing loads it at boot: install {package}")
        return [c for c in changes if c.changed]

    def ruleset(self) -> str:
        parts = []
        for family in self.families():
            save, _restore = self._tools[family]
            out = self.runner.check([save], what=f"reading the {BASE[family]} ruleset")
            parts.append(_strip_save_noise(out))
        if self.runner.which("ipset"):
            rc, out, _err = self.runner.run([t.cast(str, self.runner.which("ipset")), "save"])
            if rc == 0:
                parts.append(out)
        return "".join(parts)


# -- helpers -------------------------------------------------------------------------------------------------------
def _rule_text(family: str, group: str, ports: str, with_ipset: bool, proto: str = "tcp",
               names: Names = DEFAULT_NAMES) -> str:
    comment = f'--comment "{names.tag} {group} {family} {proto} {ports}"'
    where = f"-m set --match-set {ipset_name(group, family, names)} dst" if with_ipset else \
        f"-d {{each network of set '{family} rules {group}'}}"
    return f"-A {names.chain} -p {proto} {where} -m multiport --dports {ports} -m comment {comment} -j ACCEPT"


def chain_lines(state: State, family: str, names: Names = DEFAULT_NAMES) -> t.List[str]:
    """The -A lines of our chain for one family, rendered from the state (rules and, without ipset, the sets)."""
    lines: t.List[str] = []
    for key in sorted(state.rules):
        if not key.startswith(f"{family} {names.chain}: "):
            continue
        match = names.comment_re.match(key.split(": ", 1)[1])
        if not match:
            continue
        group, ports, proto = match["group"], match["ports"], match["proto"]
        set_key = f"{family} rules {group}"
        if set_key in state.sets:
            for network in sorted(state.sets[set_key], key=_net_key):
                lines.append(f"-A {names.chain} -d {network} -p {proto} -m multiport --dports {ports} -m comment "
                             f'--comment "{names.tag} {group} {family} {proto} {ports}" -j ACCEPT')
        else:
            lines.append(_rule_text(family, group, ports, True, proto, names))
    return lines


def _net_key(network: str) -> t.Tuple[int, int]:
    import ipaddress

    parsed = ipaddress.ip_network(network, strict=False)
    return int(parsed.network_address), parsed.prefixlen


def _only(state: State, prefix: str) -> State:
    return State({k: v for k, v in state.containers.items() if k.startswith(prefix)},
                 {k: v for k, v in state.sets.items() if k.startswith(prefix)},
                 {k: v for k, v in state.rules.items() if k.startswith(prefix)}, state.meta)


def _without_ipset(state: State) -> State:
    out = State(meta=state.meta)
    for key, spec in state.containers.items():
        if not key.startswith("ipset "):
            out.containers[key] = spec
    for key, elements in state.sets.items():
        if key.startswith("ipset "):
            name = key.split(" ", 1)[1]
            _tag, group, suffix = name.rsplit("_", 2)
            family = "ipv4" if suffix == "v4" else "ipv6"
            out.sets[f"{family} rules {group}"] = elements
        else:
            out.sets[key] = elements
    out.rules = dict(state.rules)
    return out


def _ipset_family(name: str) -> str:
    return "inet6" if name.endswith("_v6") else "inet"


def _ipset_create(name: str, state: State) -> str:
    lines = [f"create {name} hash:net family {_ipset_family(name)}"]
    lines += [f"add {name} {e}" for e in sorted(state.sets.get(f"ipset {name}", frozenset()), key=_net_key)]
    return "\n".join(lines) + "\n"


def _ipset_update(name: str, added: t.Sequence[str], removed: t.Sequence[str]) -> str:
    return "".join([f"add {name} {e}\n" for e in added] + [f"del {name} {e}\n" for e in removed])


def _ipset_save_lines(state: State) -> t.List[str]:
    lines: t.List[str] = []
    for key in sorted(k for k in state.sets if k.startswith("ipset ")):
        lines += _ipset_create(key.split(" ", 1)[1], state).splitlines()
    return lines


def _strip_save_noise(text: str) -> str:
    """iptables-save output without its timestamps and packet counters (they change by themselves)."""
    lines = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        lines.append(re.sub(r" \[\d+:\d+\]$", " [0:0]", line))
    return "\n".join(lines) + ("\n" if lines else "")


def _created_mark_of(text: t.Optional[str], names: Names) -> str:
    first = (text or "").split("\n", 1)[0]
    return first if first.startswith(CREATED_PREFIX) else names.created_mark


def _after_us(line: str, names: Names, kind: str) -> bool:
    """Is `line` another protectnet owner's line of this kind ("decl", "jump", "rule") that sorts after ours? Owners'
    lines keep a fixed order in shared files (by chain name), so two owners editing in turn never swap them."""
    chain = _owner_chain(line)
    if not chain or chain == names.chain:
        return False
    stripped = line.strip()
    is_kind = {"decl": stripped.startswith(":"), "rule": stripped.startswith(f"-A {chain} "),
               "jump": stripped.startswith("-A OUTPUT ")}[kind]
    return is_kind and chain > names.chain


def _edit_rules_file(before: t.Optional[str], ours: t.Optional[t.Tuple[t.List[str], t.List[str], t.List[str]]],
                     names: Names = DEFAULT_NAMES) -> t.Optional[str]:
    """A saved-rules file (iptables-save format) with one owner's lines put in, or taken out; nothing else changes
    (another owner's lines stay where they are)."""
    created_by_us = before is None or before.startswith(CREATED_PREFIX)
    mark = _created_mark_of(before, names)
    lines = (before or "").splitlines()
    out: t.List[str] = []
    in_filter = False
    filter_seen = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("*"):
            in_filter = stripped == "*filter"
            filter_seen = filter_seen or in_filter
        if in_filter and names.ours(stripped):
            continue
        if in_filter and stripped == "COMMIT":
            in_filter = False
            if ours:
                at = len(out)
                while at > 0 and _after_us(out[at - 1], names, "rule"):
                    at -= 1
                out[at:at] = ours[2]
        out.append(line)
    if ours:
        if not filter_seen:
            if not out:
                out.append(mark)
            out += ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
                    *ours[2], "COMMIT"]
        # the chain declaration after the last declaration, the jump before the first rule of the table
        # (other owners' declarations and jumps that sort after ours stay after ours)
        start = out.index("*filter")
        end = start + out[start:].index("COMMIT")
        declarations = [i for i in range(start, end) if out[i].startswith(":")]
        placed = [i for i in declarations if not _after_us(out[i], names, "decl")]
        at = (placed[-1] if placed else start) + 1
        out[at:at] = ours[0]
        end += len(ours[0])
        declarations = [i for i in range(start, end) if out[i].startswith(":")]
        at = (declarations[-1] if declarations else start) + 1
        while at < end and _owner_chain(out[at]) and not _after_us(out[at], names, "jump") \
                and out[at].startswith("-A OUTPUT "):
            at += 1
        out[at:at] = ours[1]
    text = "\n".join(out) + ("\n" if out else "")
    if not ours and created_by_us:
        skeleton = "\n".join([mark, "*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]",
                              ":OUTPUT ACCEPT [0:0]", "COMMIT"]) + "\n"
        if text == skeleton or not text.strip():
            return None
    return text if (before is not None or ours) else None


def _ipset_after_us(line: str, names: Names) -> bool:
    parts = line.split()
    return (len(parts) >= 2 and parts[1].startswith("protectnet_") and not parts[1].startswith(names.ipset_prefix)
            and parts[1] > names.ipset_prefix)


def _edit_ipset_file(before: t.Optional[str], ours: t.Optional[t.List[str]], names: Names = DEFAULT_NAMES
                     ) -> t.Optional[str]:
    created_by_us = before is None or before.startswith(CREATED_PREFIX)
    out = [line for line in (before or "").splitlines()
           if not (len(line.split()) >= 2 and line.split()[1].startswith(names.ipset_prefix))]
    if ours:
        if not out:
            out.append(names.created_mark)
        at = len(out)
        while at > 0 and _ipset_after_us(out[at - 1], names):
            at -= 1
        out[at:at] = ours
    if not ours and created_by_us and all(line.startswith(CREATED_PREFIX) or not line.strip() for line in out):
        return None
    return "\n".join(out) + ("\n" if out else "")
