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
from __future__ import annotations

import glob
import os
import re
import typing as t
from xml.sax.saxutils import escape, quoteattr

from ._base import (
    Command,
    CommandError,
    Detection,
    FileChange,
    FirewallBackend,
    Plan,
    Runner,
    Step,
    file_change,
    read_text,
)
from ._model import FAMILIES, TAG, FirewallError, Policy, State, canonical_element, diff, element_sort_key

POLICY = TAG
PRIORITY = -32768
TARGET = "CONTINUE"
CONFIG_DIR = "/etc/firewalld"
SUFFIX = {"ipv4": "v4", "ipv6": "v6"}
IPSET_FAMILY = {"ipv4": "inet", "ipv6": "inet6"}
NOT_RUNNING = 252  # firewall-cmd --state: "not running"

_RICH_RE = re.compile(r'^rule family="(?P<family>ipv4|ipv6)" destination ipset="(?P<ipset>[^"]+)" '
                      r'port port="(?P<port>\d+)" protocol="tcp" accept$')


def ipset_name(group: str, family: str) -> str:
    return f"{TAG}_{group}_{SUFFIX[family]}"


def rich_rule(group: str, family: str, port: int) -> str:
    return (f'rule family="{family}" destination ipset="{ipset_name(group, family)}" port port="{port}" '
            'protocol="tcp" accept')


def policy_spec(ingress: str = "HOST", egress: str = "ANY", target: str = TARGET, priority: int = PRIORITY,
                extra: str = "") -> str:
    return f"{ingress} -> {egress}, target {target}, priority {priority}" + (f", {extra}" if extra else "")


def parse_info(text: str) -> t.Dict[str, t.Any]:
    """`firewall-cmd --info-policy/--info-ipset` output: {'name': ..., key: value, 'rich rules': [...]}."""
    info: t.Dict[str, t.Any] = {}
    lines = text.splitlines()
    if lines:
        info["name"] = lines[0].split()[0] if lines[0].split() else ""
    key = ""
    for line in lines[1:]:
        if line.startswith("\t") and key:
            info.setdefault(key, [])
            if isinstance(info[key], list):
                info[key].append(line.strip())
            continue
        name, sep, value = line.strip().partition(":")
        if not sep:
            continue
        key = name.strip()
        value = value.strip()
        info[key] = [] if key == "rich rules" else value
    return info


class FirewalldBackend(FirewallBackend):
    name = "firewalld"

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
        found.owns = os.path.exists(cls.policy_path())
        found.detail = "firewalld is running" + (", the EPNS policy is in its configuration" if found.owns else "")
        return found

    # -- paths -----------------------------------------------------------------------------------------------
    @staticmethod
    def policy_path() -> str:
        return f"{CONFIG_DIR}/policies/{POLICY}.xml"

    @staticmethod
    def ipset_path(name: str) -> str:
        return f"{CONFIG_DIR}/ipsets/{name}.xml"

    def _fc(self) -> str:
        fc = self.runner.which("firewall-cmd")
        if not fc:
            raise FirewallError("backend firewalld: firewall-cmd is not installed")
        return fc

    # -- reading ---------------------------------------------------------------------------------------------
    def read_current(self) -> State:
        """The runtime configuration (what is in force); read-only firewall-cmd queries."""
        fc = self._fc()
        state = State()
        rc, out, err = self.runner.run([fc, "--info-policy", POLICY])
        if rc == 0:
            info = parse_info(out)
            extra = ", ".join(f"{k}: {v}" for k, v in sorted(info.items())
                              if k not in ("name", "priority", "target", "ingress-zones", "egress-zones",
                                           "rich rules", "masquerade") and v)
            if info.get("masquerade", "no") != "no":
                extra = ", ".join(filter(None, [extra, f"masquerade: {info['masquerade']}"]))
            state.containers[f"policy {POLICY}"] = policy_spec(info.get("ingress-zones", ""),
                                                               info.get("egress-zones", ""),
                                                               info.get("target", ""), info.get("priority", ""),
                                                               extra)
            for rule in info.get("rich rules", []):
                key = f"policy {POLICY}: {rule}"
                n = 2
                while key in state.rules:
                    key = f"policy {POLICY}: {rule} #{n}"
                    n += 1
                state.rules[key] = rule
        elif "unrecognized arguments" in err or "no such option" in err:
            raise FirewallError("backend firewalld: this firewalld has no policy objects (firewalld 0.9 or later "
                                "is needed); use backend nftables or iptables on this host")
        elif "INVALID_POLICY" not in out + err:
            raise CommandError([fc, "--info-policy", POLICY], rc, out, err, "reading the firewalld policy")
        names = self.runner.check([fc, "--get-ipsets"], what="listing the firewalld ipsets").split()
        for name in sorted(n for n in names if n.startswith(TAG + "_")):
            info = parse_info(self.runner.check([fc, "--info-ipset", name], what=f"reading ipset {name}"))
            state.containers[f"ipset {name}"] = f"{info.get('type', '')} {info.get('options', '')}".strip()
            state.sets[f"ipset {name}"] = frozenset(canonical_element(e) for e in info.get("entries", "").split())
        return state

    # -- desired ---------------------------------------------------------------------------------------------
    def compute_desired(self, policy: Policy, current: State) -> State:
        desired = State()
        desired.containers[f"policy {POLICY}"] = policy_spec()
        for group in policy.groups:
            for family in FAMILIES:
                name = ipset_name(group.name, family)
                desired.containers[f"ipset {name}"] = f"hash:net family={IPSET_FAMILY[family]}"
                desired.sets[f"ipset {name}"] = frozenset(group.addresses(family))
                for port in group.ports:
                    rule = rich_rule(group.name, family, port)
                    desired.rules[f"policy {POLICY}: {rule}"] = rule
        return desired

    # -- files (whole XML objects) -----------------------------------------------------------------------------
    def render_files(self, state: State) -> t.Dict[str, str]:
        """Our permanent XML objects for a State: path -> content."""
        files: t.Dict[str, str] = {}
        if state.empty:
            return files
        for key in sorted(state.sets):
            name = key.split(" ", 1)[1]
            family = "inet6" if name.endswith("_v6") else "inet"
            lines = ['<?xml version="1.0" encoding="utf-8"?>', '<ipset type="hash:net">',
                     f"  <short>{TAG}</short>",
                     "  <description>EPNS egress addresses (managed by protectnet.epns.epns_firewall)</description>",
                     f'  <option name="family" value="{family}"/>']
            lines += [f"  <entry>{escape(e)}</entry>" for e in sorted(state.sets[key], key=element_sort_key)]
            lines.append("</ipset>")
            files[self.ipset_path(name)] = "\n".join(lines) + "\n"
        if f"policy {POLICY}" in state.containers:
            lines = ['<?xml version="1.0" encoding="utf-8"?>', f'<policy target="{TARGET}" priority="{PRIORITY}">',
                     f"  <short>{TAG}</short>",
                     "  <description>EPNS egress (managed by protectnet.epns.epns_firewall)</description>",
                     '  <ingress-zone name="HOST"/>', '  <egress-zone name="ANY"/>']
            for rule in sorted(state.rules.values()):
                match = _RICH_RE.match(rule)
                if not match:
                    continue  # a rule of another shape in our policy: not rendered, so it goes
                lines += [f"  <rule family={quoteattr(match['family'])}>",
                          f"    <destination ipset={quoteattr(match['ipset'])}/>",
                          f"    <port port={quoteattr(match['port'])} protocol=\"tcp\"/>",
                          "    <accept/>", "  </rule>"]
            lines.append("</policy>")
            files[self.policy_path()] = "\n".join(lines) + "\n"
        return files

    def own_paths_on_disk(self) -> t.List[str]:
        paths = [p for p in [self.policy_path()] if os.path.exists(p)]
        paths += sorted(glob.glob(f"{CONFIG_DIR}/ipsets/{TAG}_*.xml"))
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
                adds = [a for e in update.added for a in ("--add-entry", e)]
                dels = [a for e in update.removed for a in ("--remove-entry", e)]
                undo_adds = [a for e in update.added for a in ("--remove-entry", e)]
                undo_dels = [a for e in update.removed for a in ("--add-entry", e)]
                if adds:
                    steps.append(Step(Command((fc, "--ipset", name, *adds)), [Command((fc, "--ipset", name,
                                                                                        *undo_adds))],
                                      f"adding addresses to ipset {name}"))
                if dels:
                    steps.append(Step(Command((fc, "--ipset", name, *dels)), [Command((fc, "--ipset", name,
                                                                                        *undo_dels))],
                                      f"removing addresses from ipset {name}"))
            return Plan(steps)
        # structural: load our whole objects through the permanent configuration, reload once, put the files back
        target = self.render_files(desired)
        paths = sorted(set(target) | set(self.render_files(current)) | set(self.own_paths_on_disk()))
        on_disk = {p: read_text(p) for p in paths}
        changed = [p for p in paths if target.get(p) != on_disk[p]]
        reload_cmd = Command((fc, "--reload"))
        for i, path in enumerate(changed):
            undo = [self._write(path, on_disk[path])] + ([reload_cmd] if i == 0 else [])
            steps.append(Step(self._write(path, target.get(path)), undo, f"staging {path}"))
        steps.append(Step(Command((fc, "--check-config")), [], "firewall-cmd --check-config"))
        steps.append(Step(reload_cmd, [], "firewall-cmd --reload"))
        for path in changed:
            steps.append(Step(self._write(path, on_disk[path]), [self._write(path, target.get(path))],
                              f"restoring {path} (persistence writes it)"))
        return Plan(steps)

    # -- persistence -------------------------------------------------------------------------------------------
    def persist(self, desired: State) -> t.List[FileChange]:
        """firewalld's permanent configuration: our XML objects (none with persist: false or state=absent)."""
        target = self.render_files(desired) if self.settings.persist else {}
        paths = sorted(set(target) | set(self.own_paths_on_disk()))
        return [c for c in (file_change(p, target.get(p)) for p in paths) if c.changed]

    def ruleset(self) -> str:
        fc = self._fc()
        parts = [self.runner.check([fc, "--list-all-policies"], what="listing the firewalld policies"),
                 self.runner.check([fc, "--list-all-zones"], what="listing the firewalld zones")]
        for name in self.runner.check([fc, "--get-ipsets"], what="listing the firewalld ipsets").split():
            parts.append(self.runner.check([fc, "--info-ipset", name], what=f"reading ipset {name}"))
        return "".join(parts)
