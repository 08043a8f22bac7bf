"""The emulated server's data and the rules that keep it consistent (ranks, built-in protection).

Plain dicts in insertion order, guarded by one lock: the emulator serves a handful of test clients, so
simplicity beats concurrency. With a state file, every change is written through (atomic rename), and a
restarted emulator picks up where it stopped.
"""
from __future__ import annotations

import copy
import json
import os
import threading
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

from .errors import ALREADY_EXISTS, FAILED_PRECONDITION, PERMISSION_DENIED, ApiError, bad, not_found
from .seed import initial_state

TARGET_KINDS = ("deviceGroupUuid", "deviceUuid", "subscriptionUuid")
_COLLECTIONS = {"deviceGroupUuid": "groups", "deviceUuid": "devices", "subscriptionUuid": "subscriptions"}


class State:
    def __init__(self, deployment: str, state_file: Optional[str] = None) -> None:
        self.deployment = deployment
        self.lock = threading.RLock()
        self.state_file = Path(state_file) if state_file else None
        self.data: Dict[str, Any] = initial_state(deployment)
        if self.state_file and self.state_file.exists():
            self.data.update(json.loads(self.state_file.read_text()))

    def reset(self) -> None:
        with self.lock:
            self.data = initial_state(self.deployment)
            self.save()

    def snapshot(self) -> Dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.data)

    def save(self) -> None:
        if not self.state_file:
            return
        tmp = self.state_file.with_suffix(".tmp")
        # Compact: with a 10000-device fleet an indented file takes three times as long to write, on every change.
        tmp.write_text(json.dumps(self.data, separators=(",", ":")))
        os.replace(tmp, self.state_file)

    # -- lookups ------------------------------------------------------------------------------------------
    def find(self, collection: str, item_uuid: str) -> Optional[Dict[str, Any]]:
        return next((x for x in self.data[collection] if x["uuid"] == item_uuid), None)

    def policy(self, policy_uuid: str) -> Dict[str, Any]:
        found = self.find("policies", policy_uuid)
        if found is None:
            raise not_found(f"policy {policy_uuid} not found")
        return found

    def assignment(self, assignment_uuid: str) -> Dict[str, Any]:
        found = self.find("assignments", assignment_uuid)
        if found is None:
            raise not_found(f"policy assignment {assignment_uuid} not found")
        return found

    # -- policies -----------------------------------------------------------------------------------------
    def add_policy(self, policy: Dict[str, Any], built_in: bool = False) -> Dict[str, Any]:
        stored = {"uuid": policy.get("uuid") or str(uuid.uuid4()), "displayName": policy["displayName"],
                  "description": policy.get("description", ""), "builtIn": built_in,
                  "features": copy.deepcopy(policy.get("features", []))}
        if self.find("policies", stored["uuid"]):
            raise ApiError(ALREADY_EXISTS, f"policy {stored['uuid']} already exists")
        self.data["policies"].append(stored)
        self.save()
        return stored

    def delete_policy(self, policy_uuid: str) -> None:
        policy = self.policy(policy_uuid)
        if policy.get("builtIn"):
            # Spec: "Built-in policies cannot be created, modified or deleted." Status not stated: 403 chosen.
            raise ApiError(PERMISSION_DENIED, f"policy {policy_uuid} is built-in and cannot be deleted")
        if any(a["policyUuid"] == policy_uuid for a in self.data["assignments"]):
            # Undocumented; refusing is the safe choice: a client that unassigns first works either way.
            raise ApiError(FAILED_PRECONDITION, f"policy {policy_uuid} is assigned; unassign it first")
        self.data["policies"].remove(policy)
        self.save()

    # -- assignments --------------------------------------------------------------------------------------
    def target_assignments(self, kind: str, target_uuid: str) -> List[Dict[str, Any]]:
        same = [a for a in self.data["assignments"] if a["target"].get(kind) == target_uuid]
        return sorted(same, key=lambda a: a["rank"])

    def assign(self, policy_uuid: str, kind: str, target_uuid: str, assignment_uuid: str = "") -> Dict[str, Any]:
        self.policy(policy_uuid)
        if kind not in TARGET_KINDS:
            raise bad(f"unknown target kind {kind}")
        if self.find(_COLLECTIONS[kind], target_uuid) is None:
            raise not_found(f"target {kind}={target_uuid} not found")
        siblings = self.target_assignments(kind, target_uuid)
        if any(a["policyUuid"] == policy_uuid for a in siblings):
            # Undocumented; a second identical assignment has no meaning, so it is refused.
            raise ApiError(ALREADY_EXISTS, f"policy {policy_uuid} is already assigned to {target_uuid}")
        # Spec: "Every new assignment to the target is put at the end of the stack."
        stored = {"uuid": assignment_uuid or str(uuid.uuid4()), "policyUuid": policy_uuid,
                  "target": {kind: target_uuid}, "rank": len(siblings) + 1}
        self.data["assignments"].append(stored)
        self.save()
        return stored

    def unassign(self, assignment_uuid: str) -> None:
        found = self.assignment(assignment_uuid)
        kind, target_uuid = next(iter(found["target"].items()))
        self.data["assignments"].remove(found)
        # Spec: "The remaining assignments to the target are reordered."
        for rank, other in enumerate(self.target_assignments(kind, target_uuid), 1):
            other["rank"] = rank
        self.save()

    def rerank(self, assignment_uuid: str, rank: int) -> None:
        found = self.assignment(assignment_uuid)
        kind, target_uuid = next(iter(found["target"].items()))
        siblings = self.target_assignments(kind, target_uuid)
        if rank <= 0:
            raise bad("rank must be 1 or more")  # spec: 0 -> 400
        if rank > len(siblings):  # spec: above the target's assignment count -> 412
            raise ApiError(FAILED_PRECONDITION, f"rank {rank} exceeds the target's {len(siblings)} assignments")
        siblings.remove(found)
        siblings.insert(rank - 1, found)
        for new_rank, other in enumerate(siblings, 1):
            other["rank"] = new_rank
        self.save()

    # -- groups and devices -------------------------------------------------------------------------------
    def replace_fleet(self, groups: List[Dict[str, Any]], devices: List[Dict[str, Any]]) -> int:
        """Groups and devices replaced; policies and configuration stay. Assignments whose target is gone are
        dropped (their count is answered). One state-file write for the whole fleet."""
        with self.lock:
            self.data["groups"], self.data["devices"] = groups, devices
            alive = {"deviceGroupUuid": {g["uuid"] for g in groups}, "deviceUuid": {d["uuid"] for d in devices},
                     "subscriptionUuid": {s["uuid"] for s in self.data["subscriptions"]}}
            kept = [a for a in self.data["assignments"]
                    if all(target in alive[kind] for kind, target in a["target"].items())]
            dropped = len(self.data["assignments"]) - len(kept)
            self.data["assignments"] = kept
            for kind, target_uuid in {next(iter(a["target"].items())) for a in kept}:
                for rank, other in enumerate(self.target_assignments(kind, target_uuid), 1):
                    other["rank"] = rank
            self.save()
            return dropped

    def subgroups(self, group_uuid: str) -> List[str]:
        """The group and all groups below it."""
        out, todo = [], [group_uuid]
        while todo:
            current = todo.pop(0)
            out.append(current)
            todo += [g["uuid"] for g in self.data["groups"] if g.get("parentGroupUuid") == current]
        return out
