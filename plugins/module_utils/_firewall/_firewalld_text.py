# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The firewalld backend's objects as text: one owner's names (policy, priority, direct chain, direct.xml mark), rich
# rules, the policy summary, direct rules and their ids, the edit of the shared /etc/firewalld/direct.xml, and the
# --info-* output it reads.
from __future__ import annotations

import re
import typing as t

from ._model import TAG, FirewallError
from ._names import OwnerNames

PRIORITY = -32768
TARGET = "CONTINUE"
DIRECT_PRIORITY = "0"
DIRECT_HEADER = '<?xml version="1.0" encoding="utf-8"?>'
NETWORKS = "<networks>"  # placeholder in a no-ipset direct rule's text: one rule per network of its set
_MARK_RE = re.compile(r"^<!-- protectnet_[a-z0-9_]+: created by protectnet\.epns[^>]*-->$")


class Names(OwnerNames):
    """One owner's policy, direct chain and direct.xml mark: epns_firewall's by default (TAG), another capability's
    (wol_multicast) by its tag."""

    def __init__(self, tag: str = TAG) -> None:
        super().__init__(tag, 20)
        self.policy = tag
        self.priority = PRIORITY if tag == TAG else PRIORITY + 1
        self.chain = tag.upper()
        self.creator = "protectnet.epns.epns_firewall" if tag == TAG else f"protectnet.epns ({tag})"
        self.direct_mark = f"<!-- {tag}: created by {self.creator}; other direct rules may be added -->"
        self.what = "EPNS egress" if tag == TAG else "Wake-on-LAN egress"


DEFAULT_NAMES = Names()


def rich_rule(group: str, family: str, port: int, proto: str = "tcp", names: Names = DEFAULT_NAMES) -> str:
    return (f'rule family="{family}" destination ipset="{names.set_name(group, family)}" port port="{port}" '
            f'protocol="{proto}" accept')


def policy_spec(ingress: str = "HOST", egress: str = "ANY", target: str = TARGET, priority: t.Any = PRIORITY,
                extra: str = "") -> str:
    return f"{ingress} -> {egress}, target {target}, priority {priority}" + (f", {extra}" if extra else "")


def join_args(args: t.Sequence[str]) -> str:
    """Direct rule arguments as one canonical line (arguments with blanks in double quotes, like iptables-save)."""
    return " ".join(f'"{a}"' if (not a or any(c.isspace() for c in a)) else a for a in args)


def direct_rule_args(group: str, family: str, ports: t.Sequence[int], ipsets: bool, network: str = NETWORKS,
                     proto: str = "tcp", names: Names = DEFAULT_NAMES) -> t.List[str]:
    comment = names.rule_comment(group, family, ports, proto)
    match = ["-m", "set", "--match-set", names.set_name(group, family), "dst"] if ipsets else ["-d", network]
    return ["-p", proto, *match, "-m", "multiport", "--dports", ",".join(str(p) for p in ports),
            "-m", "comment", "--comment", comment, "-j", "ACCEPT"]


def jump_args(names: Names = DEFAULT_NAMES) -> t.List[str]:
    return ["-m", "comment", "--comment", names.jump_comment, "-j", names.chain]


def direct_comment(args: t.Sequence[str]) -> str:
    for i, arg in enumerate(args[:-1]):
        if arg == "--comment":
            return args[i + 1]
    return ""


def direct_rule_key(ipv: str, table: str, chain: str, priority: str, args: t.Sequence[str]) -> str:
    return f"direct {ipv} {table} {chain} {priority}: {direct_comment(args) or join_args(args)}"


def split_direct_key(key: str) -> t.Tuple[str, str, str, str]:
    ipv, table, chain, priority = key.split(":", 1)[0].split()[1:5]
    return ipv, table, chain, priority


def _is_own_direct_line(line: str, names: Names = DEFAULT_NAMES) -> bool:
    text = line.strip()
    return text.startswith(("<chain ", "<rule ")) and re.search(r"\b" + names.chain + r"\b", text) is not None


def _only_our_skeleton(lines: t.Sequence[str]) -> bool:
    """direct.xml holds nothing but the header, <direct>, </direct> and protectnet.epns creation marks (at least
    one): a file one of our owners created and that is empty again."""
    texts = [line.strip() for line in lines if line.strip()]
    marks = [text for text in texts if _MARK_RE.match(text)]
    rest = [text for text in texts if not _MARK_RE.match(text)]
    return bool(marks) and rest == [DIRECT_HEADER, "<direct>", "</direct>"]


def merge_direct_xml(before: t.Optional[str], own: t.Sequence[str], names: Names = DEFAULT_NAMES
                     ) -> t.Optional[str]:
    """direct.xml with exactly our lines (own; [] removes ours): others' lines are kept byte for byte, ours go right
    after <direct>. A file we (any owner) created and that holds nothing else any more is removed (None)."""
    if before is None:
        if not own:
            return None
        return (f"{DIRECT_HEADER}\n<direct>\n{names.direct_mark}\n" + "".join(f"{line}\n" for line in own)
                + "</direct>\n")
    lines = [line for line in before.splitlines(keepends=True) if not _is_own_direct_line(line, names)]
    if own:
        at = next((i + 1 for i, line in enumerate(lines) if line.strip().startswith("<direct") and
                   line.strip().endswith(">") and not line.strip().endswith("/>")), None)
        if at is None:
            raise FirewallError("backend firewalld: cannot edit /etc/firewalld/direct.xml (no <direct> element "
                                "found): fix or remove the file")
        while at < len(lines) and _MARK_RE.match(lines[at].strip()):
            at += 1
        lines[at:at] = [f"{line}\n" for line in own]
    text = "".join(lines)
    return None if _only_our_skeleton(lines) else text


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
