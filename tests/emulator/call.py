"""One API call as the handlers see it: routing result, query, body decoding, and response rendering."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .errors import bad
from .protojson import decode
from .recorder import Record

# int64 fields of the responses: protobuf JSON would send these as strings; the specs say integer.
INT64_KEYS = {"featureId", "rank", "totalSize"}


@dataclass
class Options:
    deployment: str
    int64_as_string: bool = False
    emit_unpopulated: bool = False


@dataclass
class Call:
    method: str
    api_path: str
    service: Optional[str]
    query: Dict[str, List[str]]
    headers: Dict[str, str]
    body: bytes
    record: Record
    options: Options
    user: Optional[str] = None
    params: Dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> Optional[str]:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)

    def json(self) -> Any:
        if not self.body.strip():
            raise bad("request body is required")
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise bad(f"request body is not JSON: {exc}") from None

    def message(self, name: str) -> Dict[str, Any]:
        """The body decoded as protobuf message `name`; unknown fields land in the record's warnings."""
        return decode(name, self.json(), self.record.warnings)

    def one(self, name: str) -> Optional[str]:
        values = self.query.get(name)
        return values[-1] if values else None

    def boolean(self, name: str) -> Optional[bool]:
        raw = self.one(name)
        if raw is None or raw == "":
            return None
        # The gateway parses query booleans with Go's strconv.ParseBool.
        if raw in ("1", "t", "T", "true", "TRUE", "True"):
            return True
        if raw in ("0", "f", "F", "false", "FALSE", "False"):
            return False
        raise bad(f"{name}: invalid boolean {raw!r}")

    def render(self, value: Any) -> Any:
        """A resource as the gateway would send it, per the emulator's encoding options."""
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if not self.options.emit_unpopulated and _unpopulated(item):
                    continue  # protobuf JSON leaves out fields holding their zero value
                if key in INT64_KEYS and self.options.int64_as_string and isinstance(item, int):
                    out[key] = str(item)
                else:
                    out[key] = self.render(item)
            return out
        if isinstance(value, list):
            return [self.render(v) for v in value]
        return value


def _unpopulated(item: Any) -> bool:
    return item in (None, "", [], {}) or item is False or (type(item) is int and item == 0)
