# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The iptables backend's text: iptables-save output and the saved-rules files in that format. One owner's names
# (chain, jump, comments), which lines are whose, and the edit of a saved-rules file that puts one owner's lines in
# or takes them out without touching anyone else's.
from __future__ import annotations

import re
import typing as t

from ._model import TAG
from ._names import OwnerNames

CREATED_MARK = "# Created by protectnet.epns.epns_firewall (EPNS egress); other rules may be added below."


CREATED_PREFIX = "# Created by protectnet.epns"  # any owner's mark: a file one owner created is "ours" for all


_OWNER_CHAIN_RE = re.compile(r"^(?::(PROTECTNET_\w+)(?: |$)|-A (PROTECTNET_\w+) |-A OUTPUT .* -j (PROTECTNET_\w+)$)")


_COMMENT_ARG_RE = re.compile(r'--comment (?:"((?:[^"\\]|\\.)*)"|(\S+))')


class Names(OwnerNames):
    """One owner's chain and jump in iptables, and the mark of a saved-rules file it creates."""

    def __init__(self, tag: str = TAG) -> None:
        super().__init__(tag, 28)
        self.chain = "PROTECTNET_EPNS" if tag == TAG else tag.upper()
        self.jump_spec = f'-m comment --comment "{self.jump_comment}" -j {self.chain}'
        self.created_mark = CREATED_MARK if tag == TAG else \
            f"# Created by protectnet.epns ({tag}); other rules may be added below."

    def ours(self, line: str) -> bool:
        chain = self.chain
        comment = comment_of(line)
        return (line.startswith((f"-A {chain} ", f":{chain} ")) or line.rstrip() == f":{chain}"
                or line.rstrip().endswith(f" -j {chain}")
                or (comment.startswith(self.tag) if self.tag == TAG else self.owns(comment)))


DEFAULT_NAMES = Names()


def comment_of(line: str) -> str:
    match = _COMMENT_ARG_RE.search(line)
    if not match:
        return ""
    return match.group(1) if match.group(1) is not None else match.group(2)


def owned_by(line: str, names: t.Optional[Names] = None) -> bool:
    return (names or DEFAULT_NAMES).ours(line)


def owner_chain(line: str) -> t.Optional[str]:
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
            if ignore_ours and owned_by(line, names):
                continue
            content = True
            if table == "filter" and (line == "-A OUTPUT -j DROP" or line.startswith("-A OUTPUT -j REJECT")):
                deny = True
    return content, deny


def _created_mark_of(text: t.Optional[str], names: Names) -> str:
    first = (text or "").split("\n", 1)[0]
    return first if first.startswith(CREATED_PREFIX) else names.created_mark


def _after_us(line: str, names: Names, kind: str) -> bool:
    """Is `line` another protectnet owner's line of this kind ("decl", "jump", "rule") that sorts after ours? Owners'
    lines keep a fixed order in shared files (by chain name), so two owners editing in turn never swap them."""
    chain = owner_chain(line)
    if not chain or chain == names.chain:
        return False
    stripped = line.strip()
    is_kind = {"decl": stripped.startswith(":"), "rule": stripped.startswith(f"-A {chain} "),
               "jump": stripped.startswith("-A OUTPUT ")}[kind]
    return is_kind and chain > names.chain


def edit_rules_file(before: t.Optional[str], ours: t.Optional[t.Tuple[t.List[str], t.List[str], t.List[str]]],
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
        while at < end and owner_chain(out[at]) and not _after_us(out[at], names, "jump") \
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
