"""A small protobuf-JSON decoder, so request bodies are judged the way the gateway's decoder judges them.

What protobuf JSON mapping accepts, this accepts: a field under its lowerCamel or its proto (snake_case) name,
int64 as a JSON number or a decimal string, an enum by name or number, `null` as "not set". Unknown fields are
dropped, as the gateway does, but reported as warnings so tests can catch misspelled fields. Wrong types,
a field given twice (both spellings), two members of a oneof and an unresolvable `@type` are 400s.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Tuple

from .errors import bad
from .shapes import ANY_TYPES, MESSAGES, ONEOF

INT_RANGES = {"int64": (-(2**63), 2**63 - 1), "int32": (-(2**31), 2**31 - 1)}


def snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def decode(message: str, value: Any, warnings: List[str], where: str = "") -> Dict[str, Any]:
    """Return `value` as a dict keyed by lowerCamel names holding only known, type-checked fields."""
    if not isinstance(value, dict):
        raise bad(f"{where or message}: expected a JSON object")
    fields = MESSAGES[message]
    by_name: Dict[str, str] = {}
    for camel in fields:
        by_name[camel] = camel
        by_name[snake(camel)] = camel
    out: Dict[str, Any] = {}
    for key, raw in value.items():
        found = by_name.get(key)
        if found is None:
            if not key.startswith("@"):
                warnings.append(f"{where}{key}: unknown field ignored")
            continue
        camel = found
        if camel in out:
            raise bad(f"{where}{camel}: field given twice")
        if raw is None:
            continue
        out[camel] = _value(fields[camel], raw, warnings, f"{where}{camel}")
    set_members = [name for name in ONEOF.get(message, []) if name in out]
    if len(set_members) > 1:
        raise bad(f"{where or message}: only one of {', '.join(set_members)} may be set")
    return out


def _value(kind: Any, raw: Any, warnings: List[str], where: str) -> Any:
    if isinstance(kind, tuple):
        tag, arg = kind
        if tag == "msg":
            return decode(arg, raw, warnings, where + ".")
        if tag == "list":
            if not isinstance(raw, list):
                raise bad(f"{where}: expected an array")
            return [_value(arg, item, warnings, f"{where}[{i}]") for i, item in enumerate(raw)]
        if tag == "map":
            if not isinstance(raw, dict):
                raise bad(f"{where}: expected an object")
            return {str(k): _value(arg, v, warnings, f"{where}[{k!r}]") for k, v in raw.items()}
        if tag == "enum":
            return _enum(arg, raw, where)
        raise AssertionError(kind)
    if kind == "string":
        if not isinstance(raw, str):
            raise bad(f"{where}: expected a string")
        return raw
    if kind == "bool":
        if not isinstance(raw, bool):
            raise bad(f"{where}: expected true or false")
        return raw
    if kind in INT_RANGES:
        return integer(raw, where, kind)
    if kind == "any":
        return _any(raw, warnings, where)
    if kind == "json":
        return raw
    raise AssertionError(kind)


def integer(raw: Any, where: str, kind: str = "int64") -> int:
    """protobuf JSON takes integers as numbers or decimal strings; 1.0 passes, 1.5 and true do not."""
    if isinstance(raw, bool):
        raise bad(f"{where}: expected an integer")
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if isinstance(raw, str) and re.fullmatch(r"-?\d+", raw.strip()):
        raw = int(raw.strip())
    if not isinstance(raw, int):
        raise bad(f"{where}: expected an integer")
    low, high = INT_RANGES[kind]
    if not low <= raw <= high:
        raise bad(f"{where}: {raw} out of range for {kind}")
    return raw


def _enum(names: List[str], raw: Any, where: str) -> str:
    if isinstance(raw, str) and raw in names:
        return raw
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < len(names):
        return names[raw]
    raise bad(f"{where}: invalid value {raw!r}")


def _any(raw: Any, warnings: List[str], where: str) -> Dict[str, Any]:
    if not isinstance(raw, dict):
        raise bad(f"{where}: expected an object")
    type_url = raw.get("@type")
    if not isinstance(type_url, str) or "/" not in type_url:
        raise bad(f"{where}: '@type' with a type URL is required")
    message = ANY_TYPES.get(type_url)
    if message is None:
        raise bad(f"{where}: unable to resolve {type_url!r}: type not found")
    decoded = decode(message, raw, warnings, where + ".")
    return {"@type": type_url, **decoded}


def split_target(kinds: Tuple[str, ...], target: Dict[str, Any]) -> Tuple[str, str]:
    """The (kind, uuid) of a PolicyTarget; exactly one member must be set and non-empty."""
    set_members = [(k, target[k]) for k in kinds if target.get(k)]
    if len(set_members) != 1:
        raise bad("assignment.target: exactly one of deviceGroupUuid, deviceUuid, subscriptionUuid is required")
    return set_members[0]
