# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The nftables backend. Layout on the host:
#
#   table inet protectnet_epns                                  (ours, whole)
#     set epns_v4 / epns_v6 [/ proxy_v4 / proxy_v6]             type ipv4_addr|ipv6_addr; flags interval
#     chain output  type filter hook output priority 0; policy accept
#       ip daddr @epns_v4 tcp dport { 443, 8883 } accept comment "protectnet_epns epns ipv4 tcp 443,8883"
#
# An accept in one base chain does not stop a drop in another base chain on the same hook, so our table
# alone cannot open a host's default-deny egress. For every foreign filter base chain on the output or
# postrouting hook that denies by default (policy drop, or a last rule that drops/rejects everything), we
# add a "hook": a copy of our sets inside that table (sets are table-scoped), named protectnet_epns_<set>,
# and one accept rule per set inserted at the top of that chain, tagged with the same comment. Nothing else
# in the foreign table is touched; address changes update every copy of a set in the same transaction.
# Every change is one `nft -f -` transaction (atomic). Chains of tables that iptables-nft manages are left to
# the iptables backend (a warning says so).
from __future__ import annotations

import glob
import json
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
from ._model import TAG, FirewallError, Policy, State, canonical_element, diff, element_sort_key
from ._names import FAMILY_SUFFIX, FIRST, OWNER_PREFIX, OwnerNames

OWN_FAMILY = "inet"
OWN_CHAIN = "output"
OWN_CHAIN_SPEC = "type filter hook output priority 0; policy accept"
DENY_HOOKS = ("output", "postrouting")
IPTABLES_NFT_TABLES = ("filter", "mangle", "raw", "security", "nat")
IPTABLES_NFT_CHAINS = ("INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING")
SET_TYPE = {"v4": "ipv4_addr", "v6": "ipv6_addr"}
MATCH_KEYWORD = {"ipv4": "ip", "ipv6": "ip6"}
TABLE_FAMILIES = {"inet": ("ipv4", "ipv6"), "ip": ("ipv4",), "ip6": ("ipv6",)}

MAIN_CONFS = ("/etc/nftables.conf", "/etc/sysconfig/nftables.conf")
PERSIST_FILE = "/etc/protectnet_epns/nftables.nft"
UNIT_DIRS = ("/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system")
BLOCK_BEGIN = "# BEGIN protectnet.epns (managed by protectnet.epns.epns_firewall; do not edit)"
BLOCK_END = "# END protectnet.epns"

TTL_SET = {"ipv4": "ip ttl set", "ipv6": "ip6 hoplimit set"}


class Names(OwnerNames):
    """One owner's table and persisted file: the default tag is epns_firewall's; another capability (wol_multicast)
    passes its own tag in BackendOptions.options['tag']."""

    def __init__(self, tag: str = TAG, ttl_only: bool = False) -> None:
        if ttl_only and tag == TAG:
            raise FirewallError(f"firewall tag {TAG!r} filters; a TTL-only table needs a tag of its own")
        super().__init__(tag, 40, ttl_comments=True)
        # ttl_only: a table that only rewrites the TTL (no verdict, no hooks into other tables), beside a firewall
        # that nftables does not manage (iptables, firewalld, ufw), for wol_multicast
        self.ttl_only = ttl_only
        self.table = tag

    @property
    def persist_file(self) -> str:
        return PERSIST_FILE if self.tag == TAG else os.path.join(os.path.dirname(PERSIST_FILE), f"{self.tag}.nft")

    @property
    def block(self) -> t.Tuple[str, str]:
        if self.tag == TAG:
            return BLOCK_BEGIN, BLOCK_END
        return (f"# BEGIN protectnet.epns {self.tag} (managed by protectnet.epns; do not edit)",
                f"# END protectnet.epns {self.tag}")


DEFAULT_NAMES = Names()


def set_name(group: str, family: str, own: bool, names: Names = DEFAULT_NAMES) -> str:
    """In our own table a set is named for its group; its copy in another table carries the owner's prefix."""
    return f"{group}_{FAMILY_SUFFIX[family]}" if own else names.set_name(group, family)


def rule_text(comment: str, own: bool, names: Names = DEFAULT_NAMES) -> t.Optional[str]:
    """The nft statement for a rule, regenerated from its comment (the comment says everything the rule does).
    A TTL (hop limit) rewrite is only done in our own chain; hooks in foreign chains only accept."""
    match = names.comment_re.match(comment)
    if not match:
        return None
    family, group, proto = match["family"], match["group"], match["proto"]
    ports = [int(p) for p in match["ports"].split(",")]
    dport = str(ports[0]) if len(ports) == 1 else "{ " + ", ".join(str(p) for p in ports) + " }"
    ttl = f"{TTL_SET[family]} {match['ttl']} " if match["ttl"] and own else ""
    verdict = "" if names.ttl_only else "accept "
    return (f"{MATCH_KEYWORD[family]} daddr @{set_name(group, family, own, names)} {proto} dport {dport} {ttl}"
            f'{verdict}comment "{comment}"')


def _rule_key(family: str, table: str, chain: str, comment: str) -> str:
    return f"{family} {table} {chain}: {comment}"


def _split_rule_key(key: str) -> t.Tuple[str, str, str, str]:
    location, _sep, comment = key.partition(": ")
    family, table, chain = location.split(" ", 2)
    return family, table, chain, comment


def _is_own(family: str, table: str, names: Names = DEFAULT_NAMES) -> bool:
    return family == OWN_FAMILY and table == names.table


def _element_text(element: t.Any) -> str:
    if isinstance(element, str):
        return canonical_element(element)
    if isinstance(element, dict):
        if "prefix" in element:
            return canonical_element(f"{element['prefix']['addr']}/{element['prefix']['len']}")
        if "elem" in element:
            return _element_text(element["elem"]["val"])
        if "range" in element:
            return f"{element['range'][0]}-{element['range'][1]}"
    return str(element)


def _unconditional_deny(rule: t.Mapping[str, t.Any]) -> bool:
    exprs = rule.get("expr", [])
    verdicts = [e for e in exprs if isinstance(e, dict) and set(e) & {"drop", "reject"}]
    others = [e for e in exprs if isinstance(e, dict) and not set(e) & {"drop", "reject", "counter", "log"}]
    return bool(verdicts) and not others


class NftablesBackend(FirewallBackend):
    name = "nftables"

    def __init__(self, runner: Runner, options: t.Optional[BackendOptions] = None) -> None:
        super().__init__(runner, options)
        self.names = Names(str(self.options.get("tag", TAG)), bool(self.options.get("ttl_only", False)))

    # -- detection -------------------------------------------------------------------------------------------
    @classmethod
    def detect(cls, runner: Runner) -> Detection:
        found = Detection(cls.name)
        nft = runner.which("nft")
        if not nft:
            found.detail = "the nft command is not installed (Debian/Ubuntu/RHEL package: nftables)"
            return found
        found.installed = True
        rc, out, err = runner.run([nft, "-j", "list", "ruleset"])
        if rc != 0:
            found.detail = f"nft cannot read the ruleset: {(err or out).strip()}"
            return found
        found.usable = True
        items = _items(out)
        tables = [i["table"] for i in items if "table" in i]
        native = [tb for tb in tables if not _is_compat_table(tb["family"], tb["name"], items)
                  and not _is_own(tb["family"], tb["name"])]
        found.owns = any(_is_own(tb["family"], tb["name"]) for tb in tables)
        deny, _compat = _deny_chains(items)
        found.deny = bool(deny)
        found.active = bool(native)
        found.detail = (f"{len(native)} nftables table(s) besides ours"
                        + (", default-deny egress in " + ", ".join(f"{d['family']} {d['table']} {d['chain']}"
                                                                   for d in deny) if deny else ""))
        return found

    # -- reading ---------------------------------------------------------------------------------------------
    def _nft(self) -> str:
        return self._tool("nft", "the nft command is not installed (package nftables)")

    def read_current(self) -> State:
        out = self.runner.check([self._nft(), "-j", "list", "ruleset"], what="reading the nftables ruleset")
        items = _items(out)
        state = State()
        handles: t.Dict[str, int] = {}
        deny, compat = _deny_chains(items)
        state.meta.update(deny_chains=deny, compat_deny=compat, handles=handles)
        for item in items:
            if "table" in item and _is_own(item["table"]["family"], item["table"]["name"], self.names):
                state.containers[f"table {OWN_FAMILY} {self.names.table}"] = "owned table"
            elif "chain" in item:
                chain = item["chain"]
                if _is_own(chain["family"], chain["table"], self.names):
                    state.containers[f"chain {OWN_FAMILY} {self.names.table} {chain['name']}"] = _chain_spec(chain)
            elif "set" in item:
                nset = item["set"]
                own = _is_own(nset["family"], nset["table"], self.names)
                if own or nset["name"].startswith(self.names.set_prefix):
                    elements = frozenset(_element_text(e) for e in nset.get("elem", []))
                    state.sets[f"{nset['family']} {nset['table']} {nset['name']}"] = elements
        # rules: ours carry the tag in their comment; position matters for hooks in foreign chains
        by_chain: t.Dict[t.Tuple[str, str, str], t.List[t.Mapping[str, t.Any]]] = {}
        for item in items:
            if "rule" in item:
                rule = item["rule"]
                by_chain.setdefault((rule["family"], rule["table"], rule["chain"]), []).append(rule)
        for (family, table, chain), rules in by_chain.items():
            own_table = _is_own(family, table, self.names)
            only_ours_so_far = True
            for rule in rules:
                comment = str(rule.get("comment", ""))
                ours = own_table or comment.startswith(self.names.tag + " ")
                if not ours:
                    # another owner's hook (protectnet_wol beside protectnet_epns) only accepts its own traffic,
                    # so ours below it still comes first; counting it would make both owners reinsert forever
                    if not comment.startswith(OWNER_PREFIX):
                        only_ours_so_far = False
                    continue
                key = _rule_key(family, table, chain, comment or f"(no comment, handle {rule['handle']})")
                text = rule_text(comment, own_table, self.names) or "(not a rule this version writes)"
                if not own_table:
                    text += FIRST if only_ours_so_far else " [below other rules]"
                n = 2
                while key in state.rules:
                    key = f"{key} #{n}"
                    n += 1
                state.rules[key] = text
                handles[key] = int(rule["handle"])
        return state

    # -- desired -------------------------------------------------------------------------------------------
    def compute_desired(self, policy: Policy, current: State) -> State:
        desired = State()
        desired.containers[f"table {OWN_FAMILY} {self.names.table}"] = "owned table"
        desired.containers[f"chain {OWN_FAMILY} {self.names.table} {OWN_CHAIN}"] = OWN_CHAIN_SPEC
        targets: t.List[t.Tuple[str, str, str, bool]] = [(OWN_FAMILY, self.names.table, OWN_CHAIN, True)]
        if not self.names.ttl_only:
            targets += [(d["family"], d["table"], d["chain"], False) for d in current.meta.get("deny_chains", [])]
        for family_name, table, chain, own in targets:
            for group in policy.groups:
                for family in TABLE_FAMILIES[family_name]:
                    name = set_name(group.name, family, own, self.names)
                    desired.sets[f"{family_name} {table} {name}"] = frozenset(group.addresses(family))
                    comment = self.names.rule_comment(group.name, family, group.ports, group.proto, group.ttl)
                    text = t.cast(str, rule_text(comment, own, self.names)) + ("" if own else FIRST)
                    desired.rules[_rule_key(family_name, table, chain, comment)] = text
        return desired

    # -- planning ------------------------------------------------------------------------------------------
    def plan(self, current: State, desired: State) -> Plan:
        script = self.script(current, desired)
        if not script:
            return Plan()
        return Plan([Step(Command((self._nft(), "-f", "-"), script), [], "nft -f (one transaction)")])

    def script(self, current: State, desired: State) -> str:
        """The nft script that turns current into desired: one transaction, so all of it applies or none."""
        change = diff(current, desired)
        if not change.changed:
            return ""
        own_table_key = f"table {OWN_FAMILY} {self.names.table}"
        own_container_change = any(k.startswith(("table", "chain")) for k in
                                   [*change.containers_added, *change.containers_removed])
        rebuild_own = own_container_change
        handles: t.Dict[str, int] = current.meta.get("handles", {})
        lines: t.List[str] = []

        def in_own(key: str) -> bool:
            family, table = key.split(" ", 2)[:2]
            return _is_own(family, table, self.names)

        # 1. removals: rules (by handle), then sets no longer wanted
        for key in sorted(change.rules_removed):
            family, table, chain, _comment = _split_rule_key(key)
            if rebuild_own and _is_own(family, table, self.names):
                continue
            lines.append(f"delete rule {family} {table} {chain} handle {handles[key]}")
        for key in sorted(change.sets_removed):
            if rebuild_own and in_own(key):
                continue
            lines.append(f"delete set {key}")
        # 2. our own table: rebuilt whole when its structure changes (never for an address change)
        if rebuild_own and own_table_key in current.containers:
            lines.append(f"delete table {OWN_FAMILY} {self.names.table}")
        if rebuild_own and own_table_key in desired.containers:
            lines.extend(self._own_table(desired))
        # 3. sets: new ones (foreign copies, or ours when the table is kept), then element updates
        for key in sorted(change.sets_added):
            if rebuild_own and in_own(key):
                continue
            lines.append(f"add set {key} {{ type {SET_TYPE[key[-2:]]}; flags interval; }}")
            if change.sets_added[key]:
                lines.append(f"add element {key} {{ {', '.join(change.sets_added[key])} }}")
        for key in sorted(change.sets_changed):
            if rebuild_own and in_own(key):
                continue
            update = change.sets_changed[key]
            if update.removed:
                lines.append(f"delete element {key} {{ {', '.join(update.removed)} }}")
            if update.added:
                lines.append(f"add element {key} {{ {', '.join(update.added)} }}")
        # 4. rules: ours appended to our chain, hooks inserted at the top of foreign chains
        for key in sorted(change.rules_added):
            family, table, chain, _comment = _split_rule_key(key)
            statement = desired.rules[key].replace(FIRST, "")
            if _is_own(family, table, self.names):
                if not rebuild_own:
                    lines.append(f"add rule {family} {table} {chain} {statement}")
            else:
                lines.append(f"insert rule {family} {table} {chain} {statement}")
        return "\n".join(lines) + "\n" if lines else ""

    def _own_table(self, desired: State) -> t.List[str]:
        """Our whole table as one block (also the body of the persisted file)."""
        lines = [f"table {OWN_FAMILY} {self.names.table} {{"]
        for key in sorted(desired.sets):
            family, table, name = key.split(" ", 2)
            if not _is_own(family, table, self.names):
                continue
            lines.append(f"\tset {name} {{")
            lines.append(f"\t\ttype {SET_TYPE[name[-2:]]}")
            lines.append("\t\tflags interval")
            if desired.sets[key]:
                lines.append(f"\t\telements = {{ {', '.join(sorted(desired.sets[key], key=element_sort_key))} }}")
            lines.append("\t}")
        for key in sorted(desired.containers):
            if not key.startswith(f"chain {OWN_FAMILY} {self.names.table} "):
                continue
            chain = key.rsplit(" ", 1)[1]
            lines.append(f"\tchain {chain} {{")
            lines.append(f"\t\t{desired.containers[key]};")
            for rule_key in sorted(desired.rules):
                family, table, rule_chain, _c = _split_rule_key(rule_key)
                if _is_own(family, table, self.names) and rule_chain == chain:
                    lines.append(f"\t\t{desired.rules[rule_key]}")
            lines.append("\t}")
        lines.append("}")
        return lines

    # -- persistence ----------------------------------------------------------------------------------------
    def persist(self, desired: State, planned: Planned = None) -> t.List[FileChange]:
        main = next((p for p in MAIN_CONFS if planned_text(p, planned) is not None), None)
        if main is None:
            if not desired.empty and self.options.persist:
                self.warnings.append("no nftables service configuration found (" + ", ".join(MAIN_CONFS)
                                     + "): the rules are not persisted across reboots")
            return [c for c in [file_change(self.names.persist_file, None, planned=planned)] if c.changed]
        main_text = planned_text(main, planned) or ""
        keep = self.options.persist and not desired.empty
        if keep and service_enabled() is False:
            self.warnings.append(f"{main} is written, but nftables.service is not enabled, so nothing loads it at boot "
                                 "(systemctl enable nftables; on a host whose firewall is firewalld or ufw, check "
                                 f"first that {main} does not flush their rules)")
        changes = [file_change(self.names.persist_file, self.persisted_file(desired, main_text) if keep else None,
                               planned=planned),
                   file_change(main, _with_include(main_text, keep, self.names), planned=planned)]
        return [c for c in changes if c.changed]

    def persisted_file(self, desired: State, main_text: str) -> str:
        lines = ["#!/usr/sbin/nft -f",
                 ("# Managed by protectnet.epns.epns_firewall: egress to ESET's push notification service (EPNS)."
                  if self.names.tag == TAG
                  else f"# Managed by protectnet.epns ({self.names.tag}): Wake-on-LAN egress"
                  + (" (multicast TTL only)." if self.names.ttl_only else ".")),
                 "# Do not edit: re-run the role (or the refresh job) instead. Loaded by the include at the end of",
                 "# the nftables service configuration.",
                 f"table {OWN_FAMILY} {self.names.table}",
                 f"delete table {OWN_FAMILY} {self.names.table}",
                 *self._own_table(desired)]
        foreign_tables = sorted({key.split(" ", 2)[0] + " " + key.split(" ", 2)[1] for key in desired.sets
                                 if not _is_own(key.split(" ", 2)[0], key.split(" ", 2)[1], self.names)})
        for family_table in foreign_tables:
            if re.search(r"^\s*table\s+" + re.escape(family_table) + r"\b", main_text, re.M) is None:
                self.warnings.append(f"the default-deny chain(s) of table {family_table} are not declared in the "
                                     "nftables service configuration, so the EPNS hook into them is not persisted "
                                     "(it is re-added by the next run)")
                continue
            lines.append(f"# hook into the default-deny egress of table {family_table}")
            for key in sorted(k for k in desired.sets if k.startswith(family_table + " ")):
                lines.append(f"add set {key} {{ type {SET_TYPE[key[-2:]]}; flags interval; }}")
                if desired.sets[key]:
                    elements = ", ".join(sorted(desired.sets[key], key=element_sort_key))
                    lines.append(f"add element {key} {{ {elements} }}")
            for key in sorted(k for k in desired.rules if k.startswith(family_table + " ")):
                family, table, chain, _c = _split_rule_key(key)
                lines.append(f"insert rule {family} {table} {chain} {desired.rules[key].replace(FIRST, '')}")
        return "\n".join(lines) + "\n"


# -- helpers -------------------------------------------------------------------------------------------------------
def _items(out: str) -> t.List[t.Dict[str, t.Any]]:
    try:
        return list(json.loads(out or '{"nftables": []}').get("nftables", []))
    except ValueError as exc:
        raise FirewallError(f"cannot parse the output of nft -j list ruleset: {exc}") from exc


def _chain_spec(chain: t.Mapping[str, t.Any]) -> str:
    if "hook" not in chain:
        return "regular chain"
    return f"type {chain['type']} hook {chain['hook']} priority {chain['prio']}; policy {chain.get('policy', 'accept')}"


def _is_compat_table(family: str, table: str, items: t.Sequence[t.Mapping[str, t.Any]]) -> bool:
    """A table iptables-nft manages (its rules must be changed with iptables, not nft)."""
    if family not in ("ip", "ip6") or table not in IPTABLES_NFT_TABLES:
        return False
    chains = [i["chain"]["name"] for i in items if "chain" in i and i["chain"]["family"] == family
              and i["chain"]["table"] == table]
    return any(name in IPTABLES_NFT_CHAINS for name in chains)


Chains = t.List[t.Dict[str, t.Any]]


def _deny_chains(items: t.Sequence[t.Mapping[str, t.Any]]) -> t.Tuple[Chains, Chains]:
    """Foreign filter base chains on the egress hooks that deny by default; and those iptables-nft manages."""
    last_rule: t.Dict[t.Tuple[str, str, str], t.Mapping[str, t.Any]] = {}
    for item in items:
        if "rule" in item:
            rule = item["rule"]
            last_rule[(rule["family"], rule["table"], rule["chain"])] = rule
    deny: t.List[t.Dict[str, t.Any]] = []
    compat: t.List[t.Dict[str, t.Any]] = []
    for item in items:
        chain = item.get("chain")
        if not chain or chain.get("hook") not in DENY_HOOKS or chain.get("type") != "filter":
            continue
        if chain["family"] not in TABLE_FAMILIES or _is_own(chain["family"], chain["table"]):
            continue
        last = last_rule.get((chain["family"], chain["table"], chain["name"]))
        if chain.get("policy") != "drop" and not (last and _unconditional_deny(last)):
            continue
        entry = {"family": chain["family"], "table": chain["table"], "chain": chain["name"],
                 "hook": chain["hook"], "prio": chain.get("prio"), "policy": chain.get("policy", "accept")}
        (compat if _is_compat_table(chain["family"], chain["table"], items) else deny).append(entry)
    return deny, compat


def service_enabled(root: str = "") -> t.Optional[bool]:
    """Is nftables.service enabled at boot? None when there is no such systemd unit (another init system: unknown).
    Read from the unit links, so it also answers where systemd is not running (containers, the lab)."""
    units = [f"{root}{d}/nftables.service" for d in UNIT_DIRS]
    if not any(os.path.exists(u) for u in units):
        return None
    if os.path.realpath(units[0]) == "/dev/null":
        return False  # masked
    return bool(glob.glob(f"{root}{UNIT_DIRS[0]}/*.wants/nftables.service")
                or glob.glob(f"{root}{UNIT_DIRS[0]}/*.requires/nftables.service"))


def _with_include(main_text: str, keep: bool, names: Names = DEFAULT_NAMES) -> str:
    """The service configuration with our managed include block at its end (keep) or without it."""
    begin, end = names.block
    lines = main_text.splitlines()
    out: t.List[str] = []
    inside = False
    for line in lines:
        if line.strip() == begin:
            inside = True
            if out and not out[-1].strip():
                out.pop()  # the blank line written before the block
            continue
        if inside:
            if line.strip() == end:
                inside = False
            continue
        out.append(line)
    if keep:
        while out and not out[-1].strip():
            out.pop()
        out += ["", begin, f'include "{names.persist_file}"', end]
    if not keep and out == lines:
        return main_text
    text = "\n".join(out)
    return text + "\n" if text else text
