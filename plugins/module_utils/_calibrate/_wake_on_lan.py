# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""The Wake-on-LAN setting path, learnt by reading candidate paths with ``configuration:batchGetValues``.

Each candidate is read on its own: a batch with one unknown path may fail as a whole (AIP-231), which would hide
the ones that exist. With discovery, the ``server`` settings are read once and every node whose name speaks of
waking (``wake``, ``wol``) becomes a candidate too; only those nodes are reported, never the rest of the tree.
"""
from __future__ import annotations

import re
import typing as t

from .._eset_api._errors import EsetApiError
from .._eset_policy._codec import MASK, is_secret_name
from .._wol import _server
from .._wol._settings_map import SETTINGS_MAP
from ._sentinel import CONFIRMED, NOT_FOUND, item

# Guesses modelled on the console wording ("multicast addresses for Wake On LAN" in More > Settings) and on the
# one known path style (``server.updates.trigger``). The first is the built-in map's guess.
DEFAULT_CANDIDATES = (SETTINGS_MAP["addresses_path"], "server.wakeOnLan.addresses", "server.wakeOnLan",
                      "server.wakeUpCall.multicastAddresses", "server.wol.multicastAddresses",
                      "server.network.wakeOnLanMulticastAddresses")
DISCOVERY_ROOT = "server"
PATH_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*")
WAKE_RE = re.compile(r"wake|wol", re.I)


def bad_paths(paths: t.Sequence[str]) -> t.List[str]:
    return [p for p in paths if not isinstance(p, str) or not PATH_RE.fullmatch(p)]


def _shown(path: str, value: t.Any) -> t.Any:
    return MASK if is_secret_name(path.rsplit(".", 1)[-1]) else value


def read(client: _server.Requester, path: str) -> t.Dict[str, t.Any]:
    """One candidate: {path, exists, value, answer}; a 403 or a failure of the server itself is raised."""
    try:
        answer = client.request("POST", SETTINGS_MAP["service"], SETTINGS_MAP["read_path"], body={"paths": [path]},
                                idempotent=True)  # a read
    except EsetApiError as exc:
        if exc.status not in _server.REFUSED_STATUSES:
            raise
        body = exc.body.strip()
        return {"path": path, "exists": False, "value": None, "answer": "HTTP {}{}".format(
            exc.status, f": {body[:200]}" if body else "")}
    for entry in (answer or {}).get("values") or []:
        if entry.get("path") == path:
            return {"path": path, "exists": True, "value": _shown(path, entry.get("value")), "answer": "HTTP 200"}
    return {"path": path, "exists": False, "value": None, "answer": "HTTP 200 without a value for this path"}


def discover(tree: t.Any, prefix: str = DISCOVERY_ROOT, inside: bool = False) -> t.List[str]:
    """Dotted paths below ``prefix`` whose name speaks of waking, and every node below such a one."""
    found: t.List[str] = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            path = f"{prefix}.{key}"
            wake = inside or bool(WAKE_RE.search(str(key)))
            if wake and PATH_RE.fullmatch(path):
                found.append(path)
            found += discover(value, path, wake)
    return found


def _addresses(value: t.Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def learn(client: _server.Requester, candidates: t.Sequence[str], discovery: bool) -> t.Dict[str, t.Any]:
    """{candidates: [...], discovered: [...], items: [...], wake_on_lan: the overrides section}."""
    discovered: t.List[str] = []
    if discovery:
        root = read(client, DISCOVERY_ROOT)
        discovered = [p for p in discover(root["value"]) if p not in candidates]
    results = [read(client, path) for path in list(candidates) + discovered]
    lists = [r for r in results if r["exists"] and _addresses(r["value"])]
    existing = [r for r in results if r["exists"]]
    out: t.Dict[str, t.Any] = {"candidates": results, "discovered": discovered, "wake_on_lan": {}}
    if lists:  # the candidates are in the order of preference, the discovered ones last
        chosen = lists[0]
        out["wake_on_lan"] = {"addresses_path": chosen["path"], "confirmed": True}
        others = [r["path"] for r in lists[1:]]
        status, value = CONFIRMED, chosen["path"]
        note = "the first path that holds a list of addresses ({}){}".format(
            chosen["value"], "; also lists: " + ", ".join(others) if others else "")
    elif existing:
        status, value, note = NOT_FOUND, None, "these exist but hold no list of addresses: " + ", ".join(
            r["path"] for r in existing)
    else:
        status, value, note = NOT_FOUND, None, f"none of the {len(results)} paths read exists on this server"
    out["items"] = [item("wake_on_lan.addresses_path", status, value, note)]
    return out
