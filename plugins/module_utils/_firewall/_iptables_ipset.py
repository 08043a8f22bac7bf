# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The iptables backend's ipsets: `ipset restore` input, and the edit of the distribution's saved-ipsets file that puts
# one owner's sets in or takes them out.
from __future__ import annotations

import ipaddress
import typing as t

from ._iptables_save import CREATED_PREFIX, DEFAULT_NAMES, Names
from ._model import State
from ._names import OWNER_PREFIX

IPSET_FAMILY = {"ipv4": "inet", "ipv6": "inet6"}


def net_key(network: str) -> t.Tuple[int, int]:
    parsed = ipaddress.ip_network(network, strict=False)
    return int(parsed.network_address), parsed.prefixlen


def _ipset_family(name: str) -> str:
    return "inet6" if name.endswith("_v6") else "inet"


def ipset_create(name: str, state: State) -> str:
    lines = [f"create {name} hash:net family {_ipset_family(name)}"]
    lines += [f"add {name} {e}" for e in sorted(state.sets.get(f"ipset {name}", frozenset()), key=net_key)]
    return "\n".join(lines) + "\n"


def ipset_update(name: str, added: t.Sequence[str], removed: t.Sequence[str]) -> str:
    return "".join([f"add {name} {e}\n" for e in added] + [f"del {name} {e}\n" for e in removed])


def ipset_save_lines(state: State) -> t.List[str]:
    lines: t.List[str] = []
    for key in sorted(k for k in state.sets if k.startswith("ipset ")):
        lines += ipset_create(key.split(" ", 1)[1], state).splitlines()
    return lines


def _ipset_after_us(line: str, names: Names) -> bool:
    parts = line.split()
    return (len(parts) >= 2 and parts[1].startswith(OWNER_PREFIX) and not parts[1].startswith(names.set_prefix)
            and parts[1] > names.set_prefix)


def edit_ipset_file(before: t.Optional[str], ours: t.Optional[t.List[str]],
                    names: Names = DEFAULT_NAMES) -> t.Optional[str]:
    created_by_us = before is None or before.startswith(CREATED_PREFIX)
    out = [line for line in (before or "").splitlines()
           if not (len(line.split()) >= 2 and line.split()[1].startswith(names.set_prefix))]
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
