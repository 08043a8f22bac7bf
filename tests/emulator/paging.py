"""pageSize / pageToken as the specs describe them.

pageSize: "If unspecified or 0, the default value is used. Values above the maximum are coerced to the
maximum"; the schema allows 0..99999, so anything else (negative, not a number, above 99999) is a 400.
Defaults: On-Prem 100 (max 10000), Cloud 50 (max 1000) (ESET-FACTS §3).
pageToken: opaque, at most 128 characters; it is bound to the filters it was issued for, as in Google's
AIP-158 that the specs cite, so reusing it with other filters is a 400.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any, Dict, List, Tuple

from .call import Call
from .errors import bad

LIMITS = {"onprem": (100, 10000), "cloud": (50, 1000)}
SCHEMA_MAX = 99999


def page_size(call: Call) -> int:
    default, maximum = LIMITS[call.options.deployment]
    raw = call.one("pageSize")
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"\d+", raw) or int(raw) > SCHEMA_MAX:
        raise bad(f"pageSize: invalid value {raw!r}")
    size = int(raw)
    return default if size == 0 else min(size, maximum)


def _filters_digest(call: Call) -> str:
    filters = {k: v for k, v in sorted(call.query.items()) if k not in ("pageSize", "pageToken")}
    blob = json.dumps([call.api_path, filters], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def paginate(call: Call, items: List[Any]) -> Tuple[List[Any], str]:
    """(this page, next page token or "")."""
    size = page_size(call)
    token = call.one("pageToken") or ""
    offset = 0
    if token:
        if len(token) > 128:
            raise bad("pageToken: too long")
        try:
            decoded: Dict[str, Any] = json.loads(base64.urlsafe_b64decode(token.encode() + b"==="))
            offset = int(decoded["o"])
            digest = decoded["f"]
        except (ValueError, KeyError, TypeError):
            raise bad("pageToken: invalid") from None
        if digest != _filters_digest(call) or offset < 0:
            raise bad("pageToken: does not belong to this query")
    chunk = items[offset:offset + size]
    next_offset = offset + size
    if next_offset >= len(items):
        return chunk, ""
    raw = json.dumps({"o": next_offset, "f": _filters_digest(call)}, separators=(",", ":")).encode()
    return chunk, base64.urlsafe_b64encode(raw).decode().rstrip("=")
