"""On-Prem 13.1+ server configuration: `POST /v2/configuration:batchGetValues` and an optional write call.

Known only from public client code: the request `{"paths": [...]}` and the paths `server` and
`server.updates.trigger`. The response shape is NOT known; the emulator answers
`{"values": [{"path": p, "value": <JSON>}]}` in request order. No public write call exists; started with
`config_write_path`, the emulator serves `POST <that path>` taking `{"values": [{"path", "value"}]}`, so a
client for a future server can be exercised. Without it, that path is 404 like any unknown route.
"""
from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any, Dict, Tuple

from .call import Call
from .errors import bad, not_found

if TYPE_CHECKING:
    from .server import Emulator

PATH_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*")


def _lookup(tree: Dict[str, Any], path: str) -> Any:
    node: Any = tree
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise not_found(f"configuration path {path!r} not found")
        node = node[part]
    return node


def batch_get(emu: Emulator, call: Call) -> Tuple[int, Any]:
    paths = call.message("BatchGetValuesRequest").get("paths", [])
    if not paths:
        raise bad("paths: at least one path is required")
    for path in paths:
        if not PATH_RE.fullmatch(path):
            raise bad(f"paths: invalid path {path!r}")
    with emu.state.lock:
        tree = emu.state.data["configuration"]
        # Batch gets are atomic (AIP-231): one unknown path fails the whole call.
        values = [{"path": p, "value": copy.deepcopy(_lookup(tree, p))} for p in paths]
    return 200, {"values": values}


def batch_set(emu: Emulator, call: Call) -> Tuple[int, Any]:
    values = call.message("BatchSetValuesRequest").get("values", [])
    if not values:
        raise bad("values: at least one value is required")
    for item in values:
        if not PATH_RE.fullmatch(item.get("path", "")) or "value" not in item:
            raise bad("values: every item needs a valid path and a value")
    with emu.state.lock:
        tree = copy.deepcopy(emu.state.data["configuration"])  # all or nothing
        for item in values:
            *parents, leaf = item["path"].split(".")
            node = tree
            for part in parents:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise bad(f"values: {item['path']!r} goes through a non-object setting")
                node = child
            node[leaf] = copy.deepcopy(item["value"])
        emu.state.data["configuration"] = tree
        emu.state.save()
    return 200, {}
