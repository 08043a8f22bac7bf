"""The test control API under /_emulator/: no ESET path starts with it, and it needs no token, so tests and
Ansible modules in other processes can inspect and steer the emulator over the same HTTPS listener.

GET    /_emulator/info                    deployment, URLs, options
GET    /_emulator/requests?since=N        recorded API calls (seq > N), secrets redacted
DELETE /_emulator/requests                forget them
GET    /_emulator/state                   policies, assignments, groups, devices, subscriptions, configuration
POST   /_emulator/reset                   seed state again; drop faults, tokens, parked 202s and records
POST   /_emulator/seed                    add {"policies","groups","devices","subscriptions","assignments"} items,
                                          deep-merge {"configuration"}; answers the stored items
POST   /_emulator/fleet                   replace groups and devices by a generated fleet (fleet.py):
                                          {"devices": N, "seed": S, "clones": K, "collisions": C, "now": T,
                                          "extra": [{"name", "group", "address", "public_ip", "family_id",
                                          "os_name", "uuid", "tags", "device_type"}]}, every field optional;
                                          policies and configuration stay, assignments whose target is gone are
                                          dropped; answers {"manifest": {...}, "counts": {"groups", "devices",
                                          "assignments_dropped"}}
GET    /_emulator/faults                  rules with their counters
POST   /_emulator/faults                  add a rule (see faults.py); answers it with its id
DELETE /_emulator/faults                  drop all rules
POST   /_emulator/tokens:expire           expire every access token now ({"refresh": true}: refresh tokens too)
"""
from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any, Dict, List, Tuple
from urllib.parse import parse_qs

from .errors import ApiError
from .fleet import fleet as make_fleet
from .policydata import format1
from .seed import AGENT_PRODUCT, AGENT_SHORT
from .shapes import LEGACY_FEATURE_ID, POLICY_DATA_TYPE
from .state import TARGET_KINDS

if TYPE_CHECKING:
    from .server import Emulator

PREFIX = "/_emulator/"


def handle(emu: Emulator, method: str, path: str, query: str, body: bytes) -> Tuple[int, Any]:
    try:
        payload = json.loads(body.decode("utf-8")) if body.strip() else {}
    except (UnicodeDecodeError, ValueError):
        return 400, {"error": "control body must be JSON"}
    key = (method, path[len(PREFIX):])
    try:
        if key == ("GET", "info"):
            return 200, emu.info()
        if key == ("GET", "requests"):
            since = int(parse_qs(query).get("since", ["0"])[-1])
            return 200, {"requests": emu.recorder.listing(since)}
        if key == ("DELETE", "requests"):
            emu.recorder.clear()
            return 200, {}
        if key == ("GET", "state"):
            return 200, emu.state.snapshot()
        if key == ("POST", "reset"):
            emu.reset()
            return 200, {}
        if key == ("POST", "seed"):
            return 200, seed(emu, payload)
        if key == ("POST", "fleet"):
            return 200, apply_fleet(emu, payload)
        if key == ("GET", "faults"):
            return 200, {"faults": emu.faults.listing()}
        if key == ("POST", "faults"):
            fault = emu.faults.add(payload)
            return 200, {"fault": {"id": fault.id}}
        if key == ("DELETE", "faults"):
            emu.faults.clear()
            return 200, {}
        if key == ("POST", "tokens:expire"):
            return 200, {"expired": emu.tokens.expire_all(bool(payload.get("refresh")))}
    except (ValueError, TypeError, KeyError) as exc:
        return 400, {"error": str(exc)}
    except ApiError as exc:
        return exc.status, {"error": exc.message}
    return 404, {"error": f"no control call {method} {path}"}


FLEET_FIELDS = ("devices", "seed", "clones", "collisions", "extra", "now")


def apply_fleet(emu: Emulator, payload: Dict[str, Any]) -> Dict[str, Any]:
    """POST /_emulator/fleet and run.py --fleet: the state's groups and devices become a generated fleet."""
    if not isinstance(payload, dict):
        raise ValueError(f"the fleet body is an object with the fields {list(FLEET_FIELDS)}")
    unknown = sorted(set(payload) - set(FLEET_FIELDS))
    if unknown:
        raise ValueError(f"unknown fleet fields {unknown}; known: {list(FLEET_FIELDS)}")
    built = make_fleet(**payload)
    dropped = emu.state.replace_fleet(built["groups"], built["devices"])
    return {"manifest": built["manifest"], "counts": {"groups": len(built["groups"]),
                                                      "devices": len(built["devices"]),
                                                      "assignments_dropped": dropped}}


def default_feature() -> Dict[str, Any]:
    """A valid legacy feature, so seeded policies need only a name."""
    data = format1(AGENT_SHORT, {"Connection": {"ce_flags": 0, "ConnectionInterval": {
        "ce_flags": 4, "ce_type": 2, "ce_value": 600}}})
    return {"featureId": LEGACY_FEATURE_ID, "flags": {},
            "configuration": {"@type": POLICY_DATA_TYPE, "product": AGENT_PRODUCT, "data": data}}


def seed(emu: Emulator, payload: Dict[str, Any]) -> Dict[str, List[Any]]:
    added: Dict[str, List[Any]] = {}
    state = emu.state
    with state.lock:
        for policy in payload.get("policies", []):
            policy = {"features": [default_feature()], **policy}
            added.setdefault("policies", []).append(state.add_policy(policy, bool(policy.get("builtIn"))))
        for name in ("groups", "devices", "subscriptions"):
            for item in payload.get(name, []):
                item = {"uuid": str(uuid.uuid4()), **item}
                if "displayName" not in item:
                    raise ValueError(f"{name}: displayName is required")
                parent = item.get("parentGroupUuid")
                if parent and state.find("groups", parent) is None:
                    raise ValueError(f"{name}: parent group {parent} does not exist")
                if state.find(name, item["uuid"]):
                    raise ValueError(f"{name}: {item['uuid']} already exists")
                state.data[name].append(item)
                added.setdefault(name, []).append(item)
        for item in payload.get("assignments", []):
            kind, target = next(iter(item["target"].items()))
            if kind not in TARGET_KINDS:
                raise ValueError(f"assignments: unknown target kind {kind}")
            added.setdefault("assignments", []).append(state.assign(item["policyUuid"], kind, target,
                                                                    item.get("uuid", "")))
        if "configuration" in payload:
            _merge(state.data["configuration"], payload["configuration"])
        state.save()
    return added


def _merge(into: Dict[str, Any], new: Dict[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
