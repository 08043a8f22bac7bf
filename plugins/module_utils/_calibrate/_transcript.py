# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""The overrides file and the transcript an administrator can share: nothing secret in either.

Secrets are the API password and tokens, the API user name, and the values the policy codec counts as secret
(passwords, keys, tokens, opaque members). They are masked by name where the codec knows the node, and every
string is scrubbed of their values as a last line, so a secret copied into an unexpected place is caught too.
"""
from __future__ import annotations

import datetime
import typing as t

from .._eset_policy._codec import MASK

SHORTEST_SECRET = 3  # shorter values would mask innocent text; the API never issues such short secrets


def scrub(value: t.Any, secrets: t.Iterable[str]) -> t.Any:
    """``value`` with every occurrence of a secret, in keys and strings, replaced by the mask."""
    ordered = sorted({s for s in secrets if isinstance(s, str) and len(s) >= SHORTEST_SECRET}, key=len, reverse=True)

    def clean(item: t.Any) -> t.Any:
        if isinstance(item, str):
            for secret in ordered:
                item = item.replace(secret, MASK)
            return item
        if isinstance(item, dict):
            return {clean(k): clean(v) for k, v in item.items()}
        if isinstance(item, (list, tuple, set)):
            return [clean(v) for v in item]
        return item

    return clean(value)


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def server_label(params: t.Mapping[str, t.Any]) -> str:
    if params.get("deployment") == "cloud":
        return "ESET PROTECT Cloud ({})".format(params.get("region") or "region from api_urls")
    return "{}:{}".format(params.get("server") or "?", params.get("port"))


def build(params: t.Mapping[str, t.Any], learnt: t.Mapping[str, t.Any], secrets: t.Set[str],
          username: str) -> t.Tuple[t.Dict[str, t.Any], t.Dict[str, t.Any]]:
    """(overrides, transcript), both scrubbed; the user name only from the transcript, where it is not needed (a
    short user name such as ``agent`` would otherwise mask a node name the overrides file must keep)."""
    stamp = now()
    overrides = {"agent_policy": learnt["agent_policy"], "wake_on_lan": learnt["wake_on_lan"],
                 "epns": learnt["epns"], "calibrated_at": stamp, "server": server_label(params)}
    transcript = {
        "calibrated_at": stamp, "server": overrides["server"], "deployment": params.get("deployment"),
        "api_user": MASK, "read_only": True,
        "findings": learnt["items"], "policy": learnt.get("policy"),
        "wake_on_lan_candidates": learnt.get("wake_on_lan_candidates"),
        "epns": learnt["epns"], "overrides": overrides, "api": learnt.get("api"),
        "redacted": "the API password, tokens and user name, and policy settings that hold secrets read "
                    + MASK,
    }
    return scrub(overrides, secrets), scrub(transcript, secrets | {username})
