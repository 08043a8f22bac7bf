# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# ESET Bridge: what is known, and what to set by hand. ESET Bridge (ESET PROTECT On-Prem 10.0+, replacing the Apache
# HTTP Proxy) is Nginx-based and is configured through its own ESET policy in the ESET PROTECT console; its files
# are generated from that policy, so this collection never edits them and never guesses their paths.
from __future__ import annotations

import typing as t

KNOWN = [
    "ESET Bridge is Nginx-based and replaced ESET's Apache HTTP Proxy (ESET PROTECT On-Prem 10.0+); it listens on "
    "TCP 3128 (confirmed: support.eset.com KB7738, KB7916; help.eset.com ports_used.html).",
    "ESET's ports table lists 8883 and 443 to epns.eset.com for the agent or the ESET Bridge machine (confirmed).",
    "Whether ESET Bridge relays CONNECT to port 8883 is not documented (unknown). If it refuses, EPNS falls back to "
    "443 through it, which a proxy idle or connection limit may cut.",
    "EPNS does not support proxy authentication: a Bridge that requires credentials cannot carry wake-up calls.",
]


def manual_steps(ports: t.Sequence[int], sources: t.Sequence[str]) -> t.List[str]:
    return [
        "In the ESET PROTECT console, edit the ESET Bridge policy (Policies > ESET Bridge) assigned to the Bridge "
        "machine; do not edit the Bridge's Nginx files, they are regenerated from the policy.",
        f"Make sure the Bridge host itself may open outbound TCP to epns.eset.com on {' and '.join(map(str, ports))} "
        "(host and network firewalls; protectnet.epns.epns_firewall can open the host firewall).",
        "Make sure the Bridge accepts the agents' networks"
        + (f" ({', '.join(sources)})" if sources else "") + " and does not require proxy authentication for them.",
        "Then prove it: run protectnet.epns.epns_probe on an agent with proxies: ['http://<bridge>:3128']; "
        "'8883 via' ok means the Bridge relays 8883, proxy_refused on 8883 with '443 via' ok means it does not.",
    ]


def report(ports: t.Sequence[int], sources: t.Sequence[str]) -> t.Dict[str, t.Any]:
    return {"known": list(KNOWN), "manual_steps": manual_steps(ports, sources)}
