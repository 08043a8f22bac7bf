# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The names every backend derives from one owner tag (epns_firewall's TAG, wol_multicast's protectnet_wol, ...):
# the grammar of the rule comments by which an owner finds its rules, set names, the jump comment. A backend's own
# Names class adds what only it has (a chain, a table, a policy, the mark of a file it creates).
from __future__ import annotations

import re
import typing as t

from ._model import TAG, FirewallError

# Every owner tag in use starts with this (protectnet_epns, protectnet_wol, protectnet_wolttl).
OWNER_PREFIX = "protectnet_"
FAMILY_SUFFIX = {"ipv4": "v4", "ipv6": "v6"}
# Appended to the State text of a rule whose position matters, so a displaced rule shows as a change.
FIRST = " [first in chain]"

# "<tag> <group> <family> <proto> <ports>[ ttl <ttl>]", e.g. "protectnet_epns epns ipv4 tcp 443,8883"
_COMMENT_TAIL = r" (?P<group>[a-z0-9]+) (?P<family>ipv4|ipv6) (?P<proto>tcp|udp) (?P<ports>[0-9,]+)"
_TTL_TAIL = r"(?: ttl (?P<ttl>[0-9]+))?"


def check_owner_tag(tag: str, max_length: int) -> str:
    """An owner tag (BackendOptions.options['tag']): TAG itself, or [a-z][a-z0-9_]* of at most max_length characters
    (the backend's name limits) that neither starts with TAG nor is a prefix of it, so no owner ever reads another's."""
    if tag != TAG and (not re.match(r"^[a-z][a-z0-9_]*$", tag) or len(tag) > max_length
                       or tag.startswith(TAG) or TAG.startswith(tag)):
        raise FirewallError(f"firewall tag {tag!r}: expected [a-z][a-z0-9_]* (at most {max_length} characters) not "
                            f"overlapping with {TAG!r}")
    return tag


class OwnerNames:
    """One owner's rule comments, set names and jump comment. ttl_comments: the comment may end in " ttl N" (nftables
    rewrites the TTL; the other backends do not, so for them such a comment is not one of theirs)."""

    def __init__(self, tag: str = TAG, max_length: int = 40, ttl_comments: bool = False) -> None:
        self.tag = check_owner_tag(tag, max_length)
        self.comment_re = re.compile(r"^" + re.escape(tag) + _COMMENT_TAIL + (_TTL_TAIL if ttl_comments else "") + "$")
        self.jump_comment = f"{tag} jump"
        self.set_prefix = tag + "_"

    def rule_comment(self, group: str, family: str, ports: t.Sequence[t.Union[int, str]], proto: str = "tcp",
                     ttl: t.Optional[int] = None) -> str:
        return (f"{self.tag} {group} {family} {proto} {','.join(str(p) for p in ports)}"
                + (f" ttl {ttl}" if ttl else ""))

    def set_name(self, group: str, family: str) -> str:
        """A set named for this owner (ipsets; nftables' copies of our sets in other tables)."""
        return f"{self.set_prefix}{group}_{FAMILY_SUFFIX[family]}"

    def owns(self, comment: str) -> bool:
        return comment == self.tag or comment.startswith(self.tag + " ")
