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
# in BackendOptions.options['tag'] and gets its own chain (the tag upper-cased: PROTECTNET_WOL), jump comment, rule
# comments, ipsets and persisted lines; two owners never see, change or remove each other's objects. Groups may be
# UDP (Group.proto). A TTL/hop-limit rewrite (Group.ttl) is not done by this backend (it would need the mangle table
# and the TTL/HL targets): a warning says so, and the TTL stays what the sending program sets.
from __future__ import annotations

import os
import re
import typing as t

from .._host._files import FileChange
from .._host._run import Command, Runner
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
from ._iptables_ipset import IPSET_FAMILY, edit_ipset_file, ipset_create, ipset_save_lines, ipset_update, net_key
from ._iptables_save import (
    DEFAULT_NAMES,
    Names,
    comment_of,
    edit_rules_file,
    filter_section,
    has_content,
    owned_by,
    owner_chain,
)
from ._model import FAMILIES, TAG, FirewallError, Policy, State, canonical_element, diff
from ._names import FIRST

BASE = {"ipv4": "iptables", "ipv6": "ip6tables"}
VARIANTS = ("legacy", "nft")

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


class IptablesBackend(FirewallBackend):
    name = "iptables"

    def __init__(self, runner: Runner, options: t.Optional[BackendOptions] = None) -> None:
        super().__init__(runner, options)
        self.names = Names(str(self.options.get("tag", TAG)))

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
            owns = any(owned_by(line, names) for line in text.splitlines())
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
        wanted = str(self.options.get("iptables_variant", "auto"))
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
        wanted = self.options.get("ipset", None)
        binary = self.runner.which("ipset")
        works = bool(binary) and self.runner.run([t.cast(str, binary), "list", "-n"])[0] == 0
        if wanted is True and not works:
            raise FirewallError("ipset: true, but the ipset command is missing or cannot talk to the kernel "
                                "(install the ipset package, or set ipset: false for one rule per network)")
        self._ipset = works if wanted is None else bool(wanted)
        return self._ipset

    # -- reading ---------------------------------------------------------------------------------------------
    def read_current(self) -> State:
        state = State()
        state.meta.update(variant=self.variant(), lines={})
        for family in self.families():
            save, _restore = self._tools[family]
            self._read_rules(state, family, self.runner.check([save], what=f"reading the {BASE[family]} ruleset"))
        self._read_ipsets(state)
        return state

    def _read_rules(self, state: State, family: str, save_output: str) -> None:
        """Our chain and rules of one family's filter table; a rule found twice gets an id suffixed #2, ..."""
        names, lines_meta = self.names, state.meta["lines"]
        only_ours = True  # so far, in OUTPUT: is our jump still first?
        for line in filter_section(save_output):
            if line.startswith(f":{names.chain} ") or line == f":{names.chain}":
                state.containers[f"{family} chain {names.chain}"] = "filter table"
                continue
            if not line.startswith("-A "):
                continue
            chain = line.split()[1]
            if not names.ours(line):
                if chain == "OUTPUT" and not owner_chain(line):  # another owner's jump only accepts its own
                    only_ours = False
                continue
            comment = comment_of(line)
            key = f"{family} {chain}: {comment or line}"
            match = names.comment_re.match(comment) if chain == names.chain else None
            if match and _DEST_RE.search(line) and not _MATCH_SET_RE.search(line):
                # without ipsets: one rule per network, held as one rule and the set of its networks
                set_key = f"{family} rules {match['group']}"
                destination = t.cast(t.Match[str], _DEST_RE.search(line)).group(1)
                state.sets[set_key] = state.sets.get(set_key, frozenset()) | {canonical_element(destination)}
                state.rules[key] = _rule_text(family, match["group"], match["ports"], False, match["proto"], names)
                lines_meta.setdefault(key, line)
                continue
            if match:
                text = _rule_text(family, match["group"], match["ports"], True, match["proto"], names) \
                    if _MATCH_SET_RE.search(line) else line
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

    def _read_ipsets(self, state: State) -> None:
        ipset = self.runner.which("ipset")
        rc, out, _err = self.runner.run([ipset, "save"]) if ipset else (1, "", "")
        if rc != 0:
            return
        for line in out.splitlines():
            parts = line.split()
            if len(parts) < 3 or not parts[1].startswith(self.names.set_prefix):
                continue
            key = f"ipset {parts[1]}"
            if parts[0] == "create":
                family = "ipv6" if "inet6" in parts else "ipv4"
                state.containers[key] = f"{parts[2]} family {IPSET_FAMILY[family]}"
                state.sets.setdefault(key, frozenset())
            elif parts[0] == "add":
                state.sets[key] = state.sets.get(key, frozenset()) | {canonical_element(parts[2])}

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
                comment = names.rule_comment(group.name, family, group.ports, group.proto)
                ports = ",".join(str(p) for p in group.ports)
                desired.rules[f"{family} {names.chain}: {comment}"] = _rule_text(family, group.name, ports,
                                                                                 with_ipset, group.proto, names)
                elements = frozenset(group.addresses(family))
                if with_ipset:
                    name = names.set_name(group.name, family)
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
                steps.append(Step(Command((ipset, "-exist", "restore"), ipset_create(name, desired)),
                                  [Command((ipset, "destroy", name))], f"creating ipset {name}"))
        for key in sorted(change.sets_changed):
            if key.startswith("ipset "):
                name = key.split(" ", 1)[1]
                update = change.sets_changed[key]
                forward = ipset_update(name, update.added, update.removed)
                backward = ipset_update(name, update.removed, update.added)
                steps.append(Step(Command((ipset, "-exist", "restore"), forward),
                                  [Command((ipset, "-exist", "restore"), backward)], f"updating ipset {name}"))
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
                                  [Command((ipset, "-exist", "restore"), ipset_create(name, current))],
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
        keep = self.options.persist and not desired.empty
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
            changes.append(file_change(paths[family], edit_rules_file(before, ours, names), PERSIST_MODE[distro],
                                       planned=planned))
        ipset_lines = ipset_save_lines(saved) if persist_ipset else None
        before = planned_text(paths["ipset"], planned)
        if before is not None or ipset_lines:
            changes.append(file_change(paths["ipset"], edit_ipset_file(before, ipset_lines, names),
                                       PERSIST_MODE[distro], planned=planned))
        if keep and not any(os.path.exists(p) for p in RULES_LOADERS[distro]):
            package = "iptables-persistent" if distro == "debian" else "iptables-services"
            self.warnings.append(f"{paths['ipv4']} is written, but nothing loads it at boot: install {package}")
        return [c for c in changes if c.changed]


# -- helpers -------------------------------------------------------------------------------------------------------
def _rule_text(family: str, group: str, ports: str, with_ipset: bool, proto: str = "tcp",
               names: Names = DEFAULT_NAMES) -> str:
    comment = f'--comment "{names.rule_comment(group, family, ports.split(","), proto)}"'
    where = f"-m set --match-set {names.set_name(group, family)} dst" if with_ipset else \
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
            for network in sorted(state.sets[set_key], key=net_key):
                lines.append(f"-A {names.chain} -d {network} -p {proto} -m multiport --dports {ports} -m comment "
                             f'--comment "{names.rule_comment(group, family, ports.split(","), proto)}" -j ACCEPT')
        else:
            lines.append(_rule_text(family, group, ports, True, proto, names))
    return lines


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
