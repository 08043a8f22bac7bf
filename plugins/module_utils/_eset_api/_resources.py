# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""Policies, policy assignments, device groups and devices, as the ESET PROTECT v2/v1 APIs expose them."""
from __future__ import annotations

import re
import typing as t
import uuid as uuidlib
from urllib.parse import quote

from ._client import EsetClient
from ._endpoints import PAGE_LIMITS
from ._errors import EsetApiError

POLICY = "policy-management"
DEVICES = "device-management"
LEGACY_FEATURE_ID = 4294967295
POLICY_DATA_TYPE = "type.googleapis.com/Era.Common.DataDefinition.Policy.PolicyData"
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
TARGET_KINDS = ("deviceGroupUuid", "deviceUuid", "subscriptionUuid")
# What a run creates carries its run's mark, so that after a lost answer the run can find what it made: a
# replacement policy has the same name as the one it replaces, so the name alone cannot tell them apart.
RUN_MARK_RE = re.compile(r"\s*\[protectnet\.epns run [0-9a-f]{32}\]$")
T = t.TypeVar("T")


def new_run_mark() -> str:
    return f"[protectnet.epns run {uuidlib.uuid4().hex}]"


def with_run_mark(description: str, mark: str) -> str:
    return f"{description} {mark}" if description else mark


def without_run_mark(description: str) -> str:
    """The description as the user wrote it: the mark of the run that created the policy removed."""
    return RUN_MARK_RE.sub("", description or "")


class UncertainCreate(EsetApiError):
    """A create may have been carried out: its answer was lost, and looking for its result failed too."""

    def __init__(self, lost: EsetApiError, what: str, lookup: EsetApiError) -> None:
        super().__init__(lost.status, lost.method, lost.url, lost.body, lost.request_id, message=(
            "{}the answer was lost, and looking for {} afterwards failed too ({}), so it may have been created"
        ).format(lost.message + "; " if lost.message else "", what, lookup))
        self.outcome_unknown = True
        self.what = what


def is_uuid(text: str) -> bool:
    return bool(UUID_RE.match(text or ""))


def legacy_feature(policy: t.Mapping[str, t.Any]) -> t.Optional[t.Dict[str, t.Any]]:
    """The ERA/ESMC/ESET PROTECT policy feature (featureId 0xFFFFFFFF, a PolicyData configuration), if any."""
    for feature in policy.get("features") or []:
        conf = feature.get("configuration") or {}
        if str(feature.get("featureId")) == str(LEGACY_FEATURE_ID) or conf.get("@type") == POLICY_DATA_TYPE:
            return t.cast(t.Dict[str, t.Any], feature)
    return None


def _assignment(raw: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    """An assignment with ``rank`` as an int (protobuf JSON may send int64 as a string; zero values may be absent)."""
    out = dict(raw)
    rank = out.get("rank")
    try:
        out["rank"] = int(rank) if rank is not None and str(rank) != "" else None
    except (TypeError, ValueError):
        out["rank"] = None
    out["target"] = dict(out.get("target") or {})
    return out


def legacy_policy_body(name: str, description: str, product: str, data_b64: str) -> t.Dict[str, t.Any]:
    return {"policy": {"displayName": name, "description": description, "features": [{
        "featureId": LEGACY_FEATURE_ID, "flags": {},
        "configuration": {"@type": POLICY_DATA_TYPE, "product": product, "data": data_b64}}]}}


def target_key(target: t.Mapping[str, t.Any]) -> t.Tuple[str, str]:
    for kind in TARGET_KINDS:
        if target.get(kind):
            return kind, str(target[kind])
    return "unknown", repr(sorted(target.items()))


class PolicyApi:
    def __init__(self, client: EsetClient) -> None:
        self.client = client

    def create_once(self, what: str, post: t.Callable[[], T], find: t.Callable[[], t.Optional[T]]) -> t.Tuple[T, bool]:
        """``post()``, carried out once in effect; returns its result and whether it was found, not answered.

        A create is never repeated blindly: after a failure that may have been carried out (a 5xx, a lost
        answer), ``find()`` looks for its result first, and only when it is not there is ``post()`` tried again,
        within the client's ``retries``. When the lookup fails, :class:`UncertainCreate` says so.
        """
        attempt = 0
        while True:
            try:
                return post(), False
            except EsetApiError as exc:
                if not exc.outcome_unknown:
                    raise
                lost = exc
            try:
                found = find()
            except EsetApiError as exc:
                raise UncertainCreate(lost, what, exc) from None
            if found is not None:
                return found, True
            if attempt >= self.client.options.retries:
                lost.message = (lost.message + "; " if lost.message else "") + (
                    f"looked afterwards: {what} does not exist")
                raise lost
            self.client.pause(attempt)
            attempt += 1

    # policies
    def list_policies(self) -> t.List[t.Dict[str, t.Any]]:
        return self.client.paginate(POLICY, "/v2/policies", "policies")

    def get_policy(self, uuid: str) -> t.Optional[t.Dict[str, t.Any]]:
        try:
            answer = self.client.request("GET", POLICY, "/v2/policies/" + quote(uuid, safe=""))
        except EsetApiError as exc:
            if exc.status == 404:
                return None
            raise
        policy = answer.get("policy") if isinstance(answer, dict) else None
        return t.cast(t.Optional[t.Dict[str, t.Any]], policy)

    def full(self, policy: t.Dict[str, t.Any]) -> t.Dict[str, t.Any]:
        """The policy with its features: list answers may leave them out."""
        if policy.get("features") is not None or not policy.get("uuid"):
            return policy
        return self.get_policy(policy["uuid"]) or policy

    def create_policy(self, body: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
        answer = self.client.request("POST", POLICY, "/v2/policies", body=body)
        policy = answer.get("policy") if isinstance(answer, dict) else None
        if not isinstance(policy, dict) or not policy.get("uuid"):
            raise EsetApiError(200, "POST", self.client.url(POLICY, "/v2/policies"), str(answer)[:500],
                               message="the answer names no policy uuid")
        return policy

    def create_marked_policy(self, body: t.Mapping[str, t.Any], mark: str) -> t.Tuple[t.Dict[str, t.Any], bool]:
        """Create the policy of ``body``, whose description carries ``mark``, exactly once (see create_once)."""
        name = str(body["policy"]["displayName"])
        return self.create_once(f"a policy named {name!r} marked {mark}", lambda: self.create_policy(body),
                                lambda: self.find_marked_policy(name, mark))

    def find_marked_policy(self, name: str, mark: str) -> t.Optional[t.Dict[str, t.Any]]:
        for policy in self.list_policies():
            if policy.get("displayName") == name and mark in str(policy.get("description") or ""):
                return policy
        return None

    def delete_policy(self, uuid: str) -> None:
        self.client.request("DELETE", POLICY, "/v2/policies/" + quote(uuid, safe=""))

    def remove_policy(self, uuid: str) -> int:
        """Unassign the policy everywhere, then delete it (a server may refuse to delete an assigned policy).

        Returns how many assignments were removed. A policy that is already gone counts as removed.
        """
        removed = 0
        for assignment in self.list_assignments(uuid):
            try:
                self.unassign(str(assignment["uuid"]))
            except EsetApiError as exc:
                if exc.status != 404:
                    raise
            removed += 1
        try:
            self.delete_policy(uuid)
        except EsetApiError as exc:
            if exc.status != 404:
                raise
        return removed

    # assignments
    def list_assignments(self, policy_uuid: str) -> t.List[t.Dict[str, t.Any]]:
        found = self.client.paginate(POLICY, "/v2/policy-assignments", "assignments", {"policyUuid": policy_uuid})
        # A server that ignores the filter must not make us act on other policies' assignments.
        return [_assignment(a) for a in found if a.get("policyUuid") in (None, policy_uuid)]

    def assign(self, policy_uuid: str, target: t.Mapping[str, str]) -> t.Dict[str, t.Any]:
        answer = self.client.request("POST", POLICY, "/v2/policy-assignments",
                                     body={"assignment": {"policyUuid": policy_uuid, "target": dict(target)}})
        assignment = answer.get("assignment") if isinstance(answer, dict) else None
        if not isinstance(assignment, dict) or not assignment.get("uuid"):
            raise EsetApiError(200, "POST", self.client.url(POLICY, "/v2/policy-assignments"), str(answer)[:500],
                               message="the answer names no assignment uuid")
        return _assignment(assignment)

    def assign_once(self, policy_uuid: str, target: t.Mapping[str, str]) -> t.Tuple[t.Dict[str, t.Any], bool]:
        """Assign ``policy_uuid`` to ``target`` exactly once (see create_once): looked up by policy and target."""
        return self.create_once("an assignment of {} to {}".format(policy_uuid, ":".join(target_key(target))),
                                lambda: self.assign(policy_uuid, target),
                                lambda: self.find_assignment(policy_uuid, target))

    def find_assignment(self, policy_uuid: str, target: t.Mapping[str, str]) -> t.Optional[t.Dict[str, t.Any]]:
        key = target_key(target)
        for assignment in self.list_assignments(policy_uuid):
            if target_key(assignment.get("target") or {}) == key:
                return assignment
        return None

    def unassign(self, assignment_uuid: str) -> None:
        """Remove an assignment; one that is already gone counts as removed (a retried DELETE whose first answer
        was lost finds it so)."""
        try:
            self.client.request("DELETE", POLICY, "/v2/policy-assignments/" + quote(assignment_uuid, safe=""))
        except EsetApiError as exc:
            if exc.status != 404:
                raise

    def rerank(self, assignment_uuid: str, rank: int) -> None:
        self.client.request("POST", POLICY, "/v2/policy-assignments/{}:updateRanking".format(
            quote(assignment_uuid, safe="")), body={"rank": rank}, idempotent=True)  # sets, so repeating is safe

    # groups
    def list_groups(self) -> t.List[t.Dict[str, t.Any]]:
        return DeviceApi(self.client).list_groups()


class DeviceApi:
    """The device-management reads: static groups and devices."""

    def __init__(self, client: EsetClient) -> None:
        self.client = client

    def page_limit(self) -> int:
        return PAGE_LIMITS[self.client.options.deployment]

    def list_groups(self, page_size: t.Optional[int] = None) -> t.List[t.Dict[str, t.Any]]:
        return self.client.paginate(DEVICES, "/v1/device_groups", "deviceGroups", page_size=page_size)

    def list_devices(self, page_size: t.Optional[int] = None) -> t.List[t.Dict[str, t.Any]]:
        """Every managed device, in pages of ``page_size`` (default: the deployment's limit, the fewest pages)."""
        return self.client.paginate(DEVICES, "/v1/devices", "devices", page_size=page_size or self.page_limit())


class GroupIndex:
    """Device groups by uuid and by name path (``All/Servers/Linux``: display names from the root, ``/``-separated).

    A display name that itself contains ``/`` is written ``\\/`` in a path.
    """

    def __init__(self, groups: t.Sequence[t.Mapping[str, t.Any]]) -> None:
        self.by_uuid = {str(g["uuid"]): dict(g) for g in groups if g.get("uuid")}
        self.names: t.Dict[str, t.List[str]] = {uuid: self._names(uuid) for uuid in self.by_uuid}
        self.paths: t.Dict[str, str] = {
            uuid: "/".join(name.replace("/", "\\/") for name in names) for uuid, names in self.names.items()}

    def _names(self, uuid: str) -> t.List[str]:
        """The display names from the root down to the group (a parent loop ends the walk)."""
        names: t.List[str] = []
        seen: t.Set[str] = set()
        current: t.Optional[str] = uuid
        while current and current in self.by_uuid and current not in seen:
            seen.add(current)
            group = self.by_uuid[current]
            names.append(str(group.get("displayName") or current))
            current = group.get("parentGroupUuid")
        return list(reversed(names))

    def parent(self, uuid: str) -> t.Optional[str]:
        """The parent group's uuid when the listing has it (the root, or an orphan, has none)."""
        parent = self.by_uuid.get(uuid, {}).get("parentGroupUuid")
        return str(parent) if parent and parent in self.by_uuid and parent != uuid else None

    def subtree(self, uuid: str) -> t.Set[str]:
        """The group and every group below it."""
        return {other for other in self.by_uuid if self._is_below(other, uuid)}

    def _is_below(self, uuid: str, top: str) -> bool:
        seen: t.Set[str] = set()
        current: t.Optional[str] = uuid
        while current and current not in seen:
            if current == top:
                return True
            seen.add(current)
            current = self.parent(current)
        return False

    def resolve(self, ref: str) -> t.Tuple[str, str]:
        """``(uuid, path)`` of a group given by uuid or name path; ValueError says why not."""
        ref = ref.strip()
        if ref in self.by_uuid:
            return ref, self.paths[ref]
        if is_uuid(ref):
            raise ValueError(f"no device group has uuid {ref}")
        wanted = ref.strip("/")
        matches = [uuid for uuid, path in self.paths.items() if path == wanted]
        if not matches:
            # Paths may leave out the root group ("Servers/Linux" for "All/Servers/Linux").
            matches = [uuid for uuid, path in self.paths.items() if path.split("/", 1)[-1] == wanted]
        if len(matches) == 1:
            return matches[0], self.paths[matches[0]]
        if not matches:
            raise ValueError("no device group has the name path {!r}; known: {}".format(
                ref, ", ".join(sorted(self.paths.values())[:20]) or "none"))
        raise ValueError("the name path {!r} matches {} groups ({}): give the uuid instead".format(
            ref, len(matches), ", ".join(sorted(matches))))

    def label(self, target: t.Mapping[str, t.Any]) -> str:
        kind, uuid = target_key(target)
        if kind == "deviceGroupUuid":
            return "group {} ({})".format(self.paths.get(uuid, "?"), uuid)
        return "{} {}".format({"deviceUuid": "device", "subscriptionUuid": "subscription"}.get(kind, kind), uuid)
