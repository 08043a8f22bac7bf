# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The ufw backend. ufw has no address sets, so each allowed network is one rule, tagged with a comment that says
# everything the rule does:
#
#   ufw allow out to 198.18.1.10/32 port 443,8883 proto tcp comment 'protectnet_epns epns ipv4 tcp 443,8883'
#   ufw allow out to 2001:db8:0:1::10/128 port 443,8883 proto tcp comment 'protectnet_epns epns ipv6 tcp 443,8883'
#
# In the State, the networks of one comment are a "set" (`<comment>: networks`) and the comment is the rule, so an
# address change is a set change and the plan adds and deletes exactly the affected rules (adds first). ufw has no
# transactions: every rule is one `ufw allow`/`ufw delete` call (it rewrites /etc/ufw/user*.rules and reloads only
# ufw's user chains; established connections are kept), each with its undo, so a failure part-way undoes the calls
# already made. ufw saves every change in its own files; there are no runtime-only ufw rules.
# Reading is `ufw status verbose` and `ufw show added` (both read-only; ufw answers rc 0 even for a rule it skipped
# or could not delete, so the engine's read-back after applying is what proves the result).
#
# Owners: the default tag (protectnet_epns) is epns_firewall's; wol_multicast passes its own tag in
# BackendOptions.options['tag'] and writes UDP rules (Group.proto) with comments 'protectnet_wol wol ipv4 udp 9'. Each
# owner reads and removes only the rules whose comment starts with its own tag. ufw cannot rewrite a TTL.
from __future__ import annotations

import ipaddress
import re
import shlex
import typing as t

from .._host._files import FileChange, read_text
from .._host._run import Command, Runner
from ._base import BackendOptions, Detection, FirewallBackend, Plan, Planned, Step
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
from ._names import OwnerNames

_ADDED_RE = re.compile(r"^ufw allow out to (?P<net>\S+) port (?P<ports>[0-9,]+) proto (?P<proto>tcp|udp) comment "
                       r"'(?P<comment>[^']*)'$")
SET_SUFFIX = ": networks"
# ufw writes IPv6 rules only where this file says IPV6=yes; anything else turns IPv6 off (ufw's own test).
DEFAULTS_FILE = "/etc/default/ufw"
_IPV6_RE = re.compile(r"""^IPV6=["']?([^"'\s]*)""", re.M)


def ipv6_enabled() -> bool:
    """ufw's IPV6 setting; a host without the file gets ufw's built-in default (on)."""
    text = read_text(DEFAULTS_FILE)
    found = _IPV6_RE.findall(text or "")
    return not found or found[-1].lower() == "yes"


# ufw has nothing of an owner's but its rule comments: the shared names serve as they are.
DEFAULT_NAMES = OwnerNames()


def rule_text(comment: str, names: OwnerNames = DEFAULT_NAMES) -> str:
    match = names.comment_re.match(comment)
    ports, proto = (match["ports"], match["proto"]) if match else ("?", "?")
    return (f"ufw allow out to {{each network of '{comment}{SET_SUFFIX}'}} port {ports} proto {proto} "
            f"comment '{comment}'")


def rule_args(network: str, comment: str, names: OwnerNames = DEFAULT_NAMES) -> t.Tuple[str, ...]:
    """The ufw arguments (after `ufw` or `ufw delete`) of one tagged rule."""
    match = names.comment_re.match(comment)
    if not match:
        raise FirewallError(f"not a {names.tag} ufw comment: {comment!r}")
    return ("allow", "out", "to", network, "port", match["ports"], "proto", match["proto"], "comment", comment)


def parse_status(text: str, names: OwnerNames = DEFAULT_NAMES) -> t.Dict[str, t.Any]:
    """`ufw status verbose`: {'active': bool, 'outgoing': 'allow'|'deny'|'reject'|'', 'owns': bool}."""
    active = bool(re.search(r"^Status: active\s*$", text, re.M))
    default = re.search(r"^Default: .*?(\w+) \(outgoing\)", text, re.M)
    return {"active": active, "outgoing": default.group(1) if default else "", "owns": f"# {names.tag} " in text}


class UfwBackend(FirewallBackend):
    name = "ufw"

    def __init__(self, runner: Runner, options: t.Optional[BackendOptions] = None) -> None:
        super().__init__(runner, options)
        self.names = OwnerNames(str(self.options.get("tag", TAG)))

    # -- detection -------------------------------------------------------------------------------------------
    @classmethod
    def detect(cls, runner: Runner) -> Detection:
        found = Detection(cls.name)
        ufw = runner.which("ufw")
        if not ufw:
            found.detail = "the ufw command is not installed (package ufw)"
            return found
        found.installed = True
        rc, out, err = runner.run([ufw, "status", "verbose"])
        if rc != 0:
            found.detail = f"ufw status failed: {(err or out).strip() or f'rc={rc}'}"
            return found
        status = parse_status(out)
        if not status["active"]:
            found.detail = ("ufw is installed but inactive (ufw status: inactive); enable it (ufw enable) or "
                            "choose another backend")
            return found
        found.usable = found.active = True
        found.owns = status["owns"]
        found.deny = status["outgoing"] in ("deny", "reject")
        found.detail = f"ufw is active, default outgoing {status['outgoing'] or 'unknown'}" + (
            ", the EPNS rules are in it" if found.owns else "")
        return found

    def _ufw(self) -> str:
        return self._tool("ufw", "the ufw command is not installed")

    # -- reading ---------------------------------------------------------------------------------------------
    def read_current(self) -> State:
        out = self.runner.check([self._ufw(), "show", "added"], what="reading the ufw rules")
        state = State()
        foreign: t.Dict[str, t.List[str]] = {}
        for raw in out.splitlines():
            line = raw.strip()
            if not self._tagged(line):
                continue
            match = _ADDED_RE.match(line)
            tag = self.names.comment_re.match(match["comment"]) if match else None
            if (match and tag and tag["ports"] == match["ports"] and tag["proto"] == match["proto"]
                    and tag["family"] == network_family(match["net"])):
                comment = match["comment"]
                network = canonical_element(match["net"])
                state.rules[comment] = rule_text(comment, self.names)
                key = comment + SET_SUFFIX
                state.sets[key] = state.sets.get(key, frozenset()) | {network}
                continue
            # tagged, but not a rule this backend writes: owned, so it is removed (by its exact text)
            key = f"other: {line}"
            n = 2
            while key in state.rules:
                key = f"other: {line} #{n}"
                n += 1
            state.rules[key] = line
            foreign.setdefault(key, shlex.split(line)[1:])
        state.meta["other"] = foreign
        return state

    def _tagged(self, line: str) -> bool:
        """A `ufw show added` line whose comment belongs to this owner (another owner's tag is left alone)."""
        comment = re.search(r" comment '([^']*)'$", line)
        if comment:
            return self.names.owns(comment.group(1))
        return f"'{self.names.tag} " in line or f"'{self.names.tag}'" in line

    # -- desired ---------------------------------------------------------------------------------------------
    def compute_desired(self, policy: Policy, current: State) -> State:
        if not self.options.persist:
            raise FirewallError("backend ufw: persist: false is not possible - ufw has no runtime-only rules, it "
                                "saves every rule in /etc/ufw/user.rules and user6.rules (use persist: true, or "
                                "backend nftables/iptables for rules that do not survive a reboot)")
        desired = State()
        families = FAMILIES if ipv6_enabled() else ("ipv4",)
        for group in policy.groups:
            self._report_ipv6_off(group.addresses("ipv6"), families)
            for family in families:
                networks = group.addresses(family)
                if not networks:
                    continue  # no rule can exist without a network: nothing to compare against
                comment = self.names.rule_comment(group.name, family, group.ports, group.proto)
                desired.rules[comment] = rule_text(comment, self.names)
                desired.sets[comment + SET_SUFFIX] = frozenset(networks)
        return desired

    def _report_ipv6_off(self, networks: t.Sequence[str], families: t.Sequence[str]) -> None:
        """ufw refuses IPv6 rules while IPv6 is off in it: say so instead of leaving the family silently missing."""
        if not networks or "ipv6" in families:
            return
        reason = (f"IPv6 is turned off in ufw (IPV6=no in {DEFAULTS_FILE}): set IPV6=yes there and run ufw reload, "
                  "then run again")
        self.not_applied.append({"family": "ipv6", "networks": list(networks), "reason": reason})
        self.warnings.append(f"the IPv6 part ({', '.join(networks)}) is not applied: {reason}")

    # -- planning ----------------------------------------------------------------------------------------------
    def plan(self, current: State, desired: State) -> Plan:
        change = diff(current, desired)
        if not change.changed:
            return Plan()
        ufw = self._ufw()
        adds: t.List[Step] = []
        dels: t.List[Step] = []
        comments = sorted(k for k in {*current.rules, *desired.rules} if self.names.comment_re.match(k))
        for comment in comments:
            key = comment + SET_SUFFIX
            want = desired.sets.get(key, frozenset()) if comment in desired.rules else frozenset()
            have = current.sets.get(key, frozenset()) if comment in current.rules else frozenset()
            for network in sorted(want - have, key=element_sort_key):
                args = rule_args(network, comment, self.names)
                adds.append(Step(Command((ufw, *args)), [Command((ufw, "delete", *args))],
                                 f"ufw {' '.join(args[:6])}"))
            for network in sorted(have - want, key=element_sort_key):
                args = rule_args(network, comment, self.names)
                dels.append(Step(Command((ufw, "delete", *args)), [Command((ufw, *args))],
                                 f"ufw delete {' '.join(args[:6])}"))
        other = current.meta.get("other", {})
        for key in sorted(k for k in current.rules if k.startswith("other: ") and k not in desired.rules):
            args = tuple(other.get(key) or shlex.split(current.rules[key])[1:])
            dels.append(Step(Command((ufw, "delete", *args)), [Command((ufw, *args))], f"ufw delete {key[7:]}"))
        return Plan(adds + dels)

    # -- persistence -------------------------------------------------------------------------------------------
    def persist(self, desired: State, planned: Planned = None) -> t.List[FileChange]:
        """Nothing to write: ufw saves every rule it adds or deletes in /etc/ufw/user.rules and user6.rules."""
        return []


def network_family(network: str) -> str:
    return "ipv6" if ipaddress.ip_network(network, strict=False).version == 6 else "ipv4"
