"""policy-management: /v2/policies and /v2/policy-assignments."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Tuple

from .call import Call
from .errors import bad
from .paging import paginate
from .policydata import PolicyDataError, check
from .protojson import split_target
from .shapes import LEGACY_FEATURE_ID, POLICY_DATA_TYPE, READ_ONLY
from .state import TARGET_KINDS

if TYPE_CHECKING:
    from .server import Emulator


def list_policies(emu: Emulator, call: Call) -> Tuple[int, Any]:
    with emu.state.lock:
        chunk, token = paginate(call, emu.state.data["policies"])
        return 200, call.render({"policies": chunk, "nextPageToken": token})


def get_policy(emu: Emulator, call: Call) -> Tuple[int, Any]:
    with emu.state.lock:
        return 200, call.render({"policy": emu.state.policy(call.params["uuid"])})


def create_policy(emu: Emulator, call: Call) -> Tuple[int, Any]:
    body = call.message("CreatePolicyRequest")
    policy = body.get("policy")
    if policy is None:
        raise bad("policy is required")
    _ignore_read_only(call, "Policy", policy, "policy.")
    validate_policy(policy)
    with emu.state.lock:
        stored = emu.state.add_policy({**policy, "uuid": ""})
        return 200, call.render({"policy": stored})


def validate_policy(policy: Dict[str, Any]) -> None:
    """What the server needs to store a legacy policy. The spec states no required fields; these are the
    ones without which the policy is meaningless (ESET-FACTS §4 layout); documented in README.md."""
    if not policy.get("displayName", "").strip():
        raise bad("policy.displayName is required")
    features = policy.get("features", [])
    if not features:
        raise bad("policy.features: at least one feature policy is required")
    for i, feature in enumerate(features):
        where = f"policy.features[{i}]"
        if "featureId" not in feature:
            raise bad(f"{where}.featureId is required")
        if feature["featureId"] != LEGACY_FEATURE_ID:
            # The emulator knows only the legacy (ERA/ESMC/EP) feature, which is the one this project uses.
            raise bad(f"{where}.featureId: unknown feature {feature['featureId']}")
        configuration = feature.get("configuration")
        if not configuration or configuration.get("@type") != POLICY_DATA_TYPE:
            raise bad(f"{where}.configuration: a {POLICY_DATA_TYPE} is required")
        if not configuration.get("product"):
            raise bad(f"{where}.configuration.product is required")
        if not configuration.get("data"):
            raise bad(f"{where}.configuration.data is required")
        try:
            check(configuration["data"])
        except PolicyDataError as exc:
            raise bad(f"{where}.configuration.data: {exc}") from None


def delete_policy(emu: Emulator, call: Call) -> Tuple[int, Any]:
    with emu.state.lock:
        emu.state.delete_policy(call.params["uuid"])
    return 200, {}


def _ignore_read_only(call: Call, message: str, value: Dict[str, Any], where: str) -> None:
    for name in READ_ONLY.get(message, []):
        if name in value:
            call.record.warnings.append(f"{where}{name}: read-only field ignored")
            value.pop(name)


def list_assignments(emu: Emulator, call: Call) -> Tuple[int, Any]:
    policies = set(call.query.get("policyUuids", [])) | set(call.query.get("policyUuid", []))
    policies.discard("")
    targets = {kind: call.one(f"target.{kind}") for kind in TARGET_KINDS if call.one(f"target.{kind}")}
    with emu.state.lock:
        items = [a for a in emu.state.data["assignments"]
                 if (not policies or a["policyUuid"] in policies)
                 and all(a["target"].get(kind) == value for kind, value in targets.items())]
        order: Dict[Any, int] = {}
        for a in emu.state.data["assignments"]:  # targets in first-assigned order, ranks within each
            order.setdefault(tuple(a["target"].items()), len(order))
        items.sort(key=lambda a: (order[tuple(a["target"].items())], a["rank"]))
        chunk, token = paginate(call, items)
        return 200, call.render({"assignments": chunk, "nextPageToken": token})


def get_assignment(emu: Emulator, call: Call) -> Tuple[int, Any]:
    with emu.state.lock:
        return 200, call.render({"assignment": emu.state.assignment(call.params["uuid"])})


def assign(emu: Emulator, call: Call) -> Tuple[int, Any]:
    body = call.message("AssignPolicyRequest")
    assignment = body.get("assignment")
    if assignment is None:
        raise bad("assignment is required")
    _ignore_read_only(call, "PolicyAssignment", assignment, "assignment.")
    if not assignment.get("policyUuid"):
        raise bad("assignment.policyUuid is required")
    kind, target_uuid = split_target(TARGET_KINDS, assignment.get("target", {}))
    with emu.state.lock:
        stored = emu.state.assign(assignment["policyUuid"], kind, target_uuid)
        return 200, call.render({"assignment": stored})


def unassign(emu: Emulator, call: Call) -> Tuple[int, Any]:
    with emu.state.lock:
        emu.state.unassign(call.params["uuid"])
    return 200, {}


def update_ranking(emu: Emulator, call: Call) -> Tuple[int, Any]:
    body = call.message("UpdateRankingBody")
    with emu.state.lock:
        emu.state.rerank(call.params["uuid"], body.get("rank", 0))  # absent = 0 in protobuf -> 400
    return 200, {}
