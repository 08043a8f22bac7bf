# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""Desired state of the agent HTTP-proxy policy, and how to reach it without ever leaving a target uncovered.

The API has no update call, so a changed policy is *replaced*:

1. create the new policy (same name);
2. assign it to every target (the old policy's targets, or ``targets``), each at the old assignment's rank (or
   ``rank``): a new assignment lands at the bottom, so it is moved up, which pushes the old one just below it;
3. only then unassign targets no longer wanted and remove the old policy (its assignments first: a server may
   refuse to delete a policy that is still assigned).

The API may carry out a create and then lose its answer, so creates are never repeated blindly: the new policy's
description carries this run's mark, and after a failed or lost create the run looks for the policy by that mark
(an assignment by policy and target) and goes on with it; only when it is not there is the create tried again.

A failure in 1 or 2 deletes the new policy again (rollback): the old policy never lost a target. A failure in 3
leaves the new policy in place on every target, with the old one still there too. Either way every target stays
covered, the result lists what was done, and a rerun converges: when several policies carry the managed name, the
one equal to the desired state is kept and the others are removed after their targets were moved to it.
"""
from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from .._eset_api._errors import EsetApiError
from .._eset_api._resources import (
    GroupIndex,
    PolicyApi,
    UncertainCreate,
    legacy_feature,
    legacy_policy_body,
    new_run_mark,
    target_key,
    with_run_mark,
    without_run_mark,
)
from . import _codec as codec
from ._desired import AgentProxyError, Desired, build_policy_data, mapped_values

NEW = "(new policy)"
TargetKey = t.Tuple[str, str]
WantedTarget = t.Tuple[TargetKey, t.Dict[str, str], t.Optional[int]]  # rank None: wherever it lands


@dataclass
class Candidate:
    """A policy that carries the managed name."""

    policy: t.Dict[str, t.Any]
    product: t.Optional[str]
    flat: t.Optional[t.Dict[str, t.Any]]
    decode_error: t.Optional[str]
    assignments: t.List[t.Dict[str, t.Any]]
    shown: t.Optional[t.Dict[str, t.Any]] = None  # flat, as results and diffs show it (secrets masked)
    format: t.Optional[str] = None  # of its policy data; None when it cannot be decoded

    @property
    def uuid(self) -> str:
        return str(self.policy["uuid"])


def _best_ranks(policies: t.List[Candidate]) -> t.Dict[TargetKey, int]:
    """The best (lowest) rank any of ``policies`` has on each target."""
    best: t.Dict[TargetKey, int] = {}
    for cand in policies:
        for a in cand.assignments:
            key = target_key(a.get("target") or {})
            rank = a.get("rank")
            if isinstance(rank, int) and (key not in best or rank < best[key]):
                best[key] = rank
    return best


class PlannedCall:
    """One API call the run needs: ``kind`` says which, ``text`` is how ``planned`` and ``actions`` list it."""

    def __init__(self, kind: str, text: str, **args: t.Any) -> None:
        self.kind = kind
        self.text = text
        self.args = args


@dataclass
class DesiredPolicy:
    """The policy data the managed policy must carry."""

    data: codec.PolicyData
    product: str
    template_uuid: t.Optional[str]
    flat: t.Dict[str, t.Any]
    shown: t.Dict[str, t.Any]


@dataclass
class PolicyPlan:
    """The calls of one run and what they lead to."""

    calls: t.List[PlannedCall]
    keeper: t.Optional[Candidate]  # the policy that stays; None: a new one is created (or, for absent, none stays)
    others: t.List[Candidate]  # the policies with the managed name that are deleted
    desired: t.Optional[DesiredPolicy] = None  # None for state absent
    assignments: t.List[t.Dict[str, t.Any]] = field(default_factory=list)  # the kept policy's, after the run

    @property
    def creates(self) -> bool:
        return self.desired is not None and self.keeper is None

    @property
    def keeper_uuid(self) -> str:
        return self.keeper.uuid if self.keeper else NEW


class AgentProxyPolicy:
    """Reads the current state, plans the calls, makes them (unless check mode) and describes the result."""

    def __init__(self, api: PolicyApi, desired: Desired, mapping: t.Mapping[str, t.Any], check_mode: bool,
                 warn: t.Callable[[str], None]) -> None:
        self.api = api
        self.desired = desired
        self.mapping = mapping
        self.check_mode = check_mode
        self.warn = warn
        self.groups: t.Optional[GroupIndex] = None
        self.actions: t.List[str] = []
        self.run_mark = new_run_mark()

    def run(self) -> t.Dict[str, t.Any]:
        policies = self.api.list_policies()
        candidates = self._candidates(policies)
        diff_before = self._diff_view(candidates)
        if self.desired.state == "absent":
            plan = self._plan_removal(candidates)
        else:
            plan = self._plan_replacement(policies, candidates)
        executed = self._execute(plan)
        return self._result(candidates, plan, executed, diff_before)

    # -- secrets -----------------------------------------------------------------------------------------
    def _shown(self, data: codec.PolicyData) -> t.Dict[str, t.Any]:
        """The settings as the diff shows them; unless revealed, secrets are masked and redacted from errors."""
        if self.desired.reveal_secrets:
            return codec.flatten(data.sections())
        for secret in codec.secret_values(data):
            self.api.client.add_secret(secret)
        return codec.flatten(codec.masked_sections(data))

    # -- reading ---------------------------------------------------------------------------------------
    def _group_index(self) -> GroupIndex:
        if self.groups is None:
            self.groups = GroupIndex(self.api.list_groups())
        return self.groups

    def _candidates(self, policies: t.List[t.Dict[str, t.Any]]) -> t.List[Candidate]:
        found: t.List[Candidate] = []
        for listed in policies:
            if listed.get("displayName") != self.desired.name:
                continue
            if listed.get("builtIn"):
                raise AgentProxyError(f"{self.desired.name!r} is the name of a built-in policy, which cannot be "
                                      "changed or deleted; choose another name")
            found.append(self._candidate(self.api.full(listed)))
        return found

    def _candidate(self, policy: t.Dict[str, t.Any]) -> Candidate:
        feature = legacy_feature(policy)
        product, flat, shown, error, data_format = None, None, None, None, None
        if feature is None:
            error = "it has no ESET PROTECT policy data (featureId 4294967295)"
        else:
            conf = feature.get("configuration") or {}
            product = conf.get("product")
            try:
                data = codec.decode(conf.get("data") or "")
            except codec.PolicyDataError as exc:
                error = str(exc)
            else:
                flat, shown, data_format = codec.flatten(data.sections()), self._shown(data), data.format
        if error:
            self.warn("policy {} named {!r} cannot be decoded ({}); it will be replaced".format(
                policy.get("uuid"), self.desired.name, error))
        return Candidate(policy, product, flat, error, self.api.list_assignments(str(policy["uuid"])), shown,
                         data_format)

    def _template(self, policies: t.List[t.Dict[str, t.Any]]) -> t.Tuple[codec.PolicyData, str, str]:
        ref = self.desired.template_policy or ""
        by_uuid = [p for p in policies if p.get("uuid") == ref]
        matches = by_uuid or [p for p in policies if p.get("displayName") == ref]
        if not matches:
            raise AgentProxyError(f"template_policy {ref!r}: no policy has this uuid or name")
        if len(matches) > 1:
            raise AgentProxyError("template_policy {!r} matches {} policies ({}): give the uuid".format(
                ref, len(matches), ", ".join(str(p.get("uuid")) for p in matches)))
        if matches[0].get("displayName") == self.desired.name and not matches[0].get("builtIn"):
            raise AgentProxyError(f"template_policy must not be the managed policy itself ({ref!r})")
        policy = self.api.full(matches[0])
        feature = legacy_feature(policy)
        if feature is None:
            raise AgentProxyError(f"template_policy {ref!r} has no ESET PROTECT policy data to clone")
        conf = feature.get("configuration") or {}
        try:
            data = codec.decode(conf.get("data") or "")
        except codec.PolicyDataError as exc:
            raise AgentProxyError(f"template_policy {ref!r} cannot be decoded: {exc}") from None
        return data, str(conf.get("product") or self.mapping["product"]), str(policy.get("uuid"))

    # -- planning ------------------------------------------------------------------------------------------
    def _plan_removal(self, candidates: t.List[Candidate]) -> PolicyPlan:
        calls = [PlannedCall("delete_policy", f"delete policy {c.uuid}", uuid=c.uuid) for c in candidates]
        return PolicyPlan(calls, keeper=None, others=candidates)

    def _plan_replacement(self, policies: t.List[t.Dict[str, t.Any]], candidates: t.List[Candidate]) -> PolicyPlan:
        """Keep the policy equal to the desired one (or create it), move every wanted target to it, delete the rest."""
        desired = self._desired_policy(policies)
        keeper = next((c for c in candidates if self._is_desired(c, desired)), None)
        plan = PolicyPlan([], keeper, [c for c in candidates if c is not keeper], desired)
        if keeper is None:
            plan.calls.append(self._create_call(desired, plan.others))
        self._plan_assignments(plan)
        plan.calls += [PlannedCall("delete_policy", "delete the old policy {}{}".format(
            cand.uuid, " (it could not be decoded)" if cand.decode_error else ""), uuid=cand.uuid)
            for cand in plan.others]
        return plan

    def _desired_policy(self, policies: t.List[t.Dict[str, t.Any]]) -> DesiredPolicy:
        template, product, template_uuid = (None, str(self.mapping["product"]), None)
        if self.desired.template_policy:
            template, product, template_uuid = self._template(policies)
        data, created_nodes = build_policy_data(self.desired, self.mapping, template)
        if created_nodes and template is not None:
            self.warn("the template policy had no node at {}; it was added. If the settings map is right this is "
                      "expected for unset values; otherwise check the node names with eset_policy_info".format(
                          ", ".join(created_nodes)))
        return DesiredPolicy(data, product, template_uuid, codec.flatten(data.sections()), self._shown(data))

    def _is_desired(self, cand: Candidate, desired: DesiredPolicy) -> bool:
        return cand.flat == desired.flat and cand.product == desired.product and \
            without_run_mark(cand.policy.get("description") or "") == self.desired.description

    def _create_call(self, desired: DesiredPolicy, others: t.List[Candidate]) -> PlannedCall:
        replacing = " (replacing {})".format(", ".join(c.uuid for c in others)) if others else ""
        body = legacy_policy_body(self.desired.name, with_run_mark(self.desired.description, self.run_mark),
                                  desired.product, desired.data.encode_b64())
        return PlannedCall("create_policy", f"create policy {self.desired.name!r}{replacing}", body=body)

    def _plan_assignments(self, plan: PolicyPlan) -> None:
        """The calls that leave the kept policy on exactly the wanted targets, at the wanted ranks."""
        wanted = self._targets_from_option() if self.desired.targets is not None else \
            self._targets_from_assignments(plan.keeper, plan.others)
        old_rank = _best_ranks(plan.others)
        have = self._kept_assignments(plan)
        for key, target, rank in wanted:
            label = self._group_index().label(target)
            current = have.get(key)
            if current is None:
                wanted_rank = rank if rank is not None else old_rank.get(key) if self.desired.rank is None \
                    else self.desired.rank
                plan.calls.append(PlannedCall("assign", "assign {} to {}{}".format(
                    "the new policy" if plan.keeper is None else plan.keeper_uuid, label,
                    f" at rank {wanted_rank}" if wanted_rank else ""), target=target, rank=wanted_rank))
                plan.assignments.append(self._assignment_view(plan.keeper_uuid, target, wanted_rank))
                continue
            if self.desired.rank is not None and current.get("rank") != self.desired.rank:
                plan.calls.append(PlannedCall("rerank", "move the assignment on {} from rank {} to {}".format(
                    label, current.get("rank"), self.desired.rank), uuid=current.get("uuid"), rank=self.desired.rank))
            plan.assignments.append(self._assignment_view(plan.keeper_uuid, target,
                                                          self.desired.rank or current.get("rank")))
        wanted_keys = {key for key, _target, _rank in wanted}
        plan.calls += [PlannedCall("unassign", "unassign {} from {}".format(
            plan.keeper_uuid, self._group_index().label(a.get("target") or {})), uuid=a.get("uuid"))
            for key, a in have.items() if key not in wanted_keys]

    def _targets_from_option(self) -> t.List[WantedTarget]:
        index = self._group_index()
        wanted: t.List[WantedTarget] = []
        seen: t.Set[str] = set()
        for ref in self.desired.targets or []:
            try:
                uuid, _path = index.resolve(ref)
            except ValueError as exc:
                raise AgentProxyError(f"targets: {exc}") from None
            if uuid not in seen:
                seen.add(uuid)
                target = {"deviceGroupUuid": uuid}
                wanted.append((target_key(target), target, self.desired.rank))
        return wanted

    def _targets_from_assignments(self, keeper: t.Optional[Candidate],
                                  others: t.List[Candidate]) -> t.List[WantedTarget]:
        """Every target of a policy with the managed name, at its best rank; the kept policy's own keep theirs."""
        order: t.Dict[TargetKey, t.Tuple[t.Dict[str, str], t.Optional[int]]] = {}
        for cand in ([keeper] if keeper else []) + others:
            for a in cand.assignments:
                target = dict(a.get("target") or {})
                key = target_key(target)
                rank = a.get("rank")
                known = order.get(key)
                if known is None or (rank is not None and (known[1] is None or rank < known[1])):
                    order[key] = (target, rank if self.desired.rank is None else self.desired.rank)
        wanted = [(key, target, rank) for key, (target, rank) in order.items()]
        if keeper is not None and self.desired.rank is None:
            kept = {target_key(a.get("target") or {}) for a in keeper.assignments}
            wanted = [(key, target, None if key in kept else rank) for key, target, rank in wanted]
        return wanted

    def _kept_assignments(self, plan: PolicyPlan) -> t.Dict[TargetKey, t.Dict[str, t.Any]]:
        """The kept policy's assignments by target; a second one on the same target gets an unassign call."""
        have: t.Dict[TargetKey, t.Dict[str, t.Any]] = {}
        for a in sorted(plan.keeper.assignments if plan.keeper else [], key=lambda a: a.get("rank") or 0):
            key = target_key(a.get("target") or {})
            if key in have:
                plan.calls.append(PlannedCall("unassign", "remove the duplicate assignment {} of {}".format(
                    a.get("uuid"), self._group_index().label(a.get("target") or {})), uuid=a.get("uuid")))
            else:
                have[key] = a
        return have

    # -- describing --------------------------------------------------------------------------------------
    def _policy_view(self, uuid: str, product: t.Optional[str], description: t.Any,
                     flat: t.Optional[t.Dict[str, t.Any]]) -> t.Dict[str, t.Any]:
        return {"uuid": uuid, "name": self.desired.name, "description": without_run_mark(description),
                "product": product, "settings": flat}

    def _assignment_view(self, policy_uuid: str, target: t.Mapping[str, t.Any],
                         rank: t.Optional[int]) -> t.Dict[str, t.Any]:
        return {"policy": policy_uuid, "target": self._group_index().label(target), "rank": rank}

    def _policy_summary(self, uuid: str, product: t.Optional[str], template_uuid: t.Optional[str],
                        data_format: t.Optional[str]) -> t.Dict[str, t.Any]:
        """One policy as ``policy``, ``before`` and ``after`` show it."""
        return {"uuid": uuid, "name": self.desired.name, "product": product, "template_uuid": template_uuid,
                "format": data_format}

    def _diff_view(self, candidates: t.List[Candidate]) -> t.Dict[str, t.Any]:
        return {"policies": [self._policy_view(c.uuid, c.product, c.policy.get("description"), c.shown)
                             for c in candidates],
                "assignments": [self._assignment_view(c.uuid, a.get("target") or {}, a.get("rank"))
                                for c in candidates for a in c.assignments]}

    def _result(self, candidates: t.List[Candidate], plan: PolicyPlan, executed: t.Mapping[str, t.Any],
                diff_before: t.Dict[str, t.Any]) -> t.Dict[str, t.Any]:
        """The module result; every key of a successful run is set here."""
        result: t.Dict[str, t.Any] = {
            "changed": bool(plan.calls), "replaced": plan.creates and bool(plan.others),
            "removed_policies": [c.uuid for c in plan.others], "planned": [c.text for c in plan.calls],
            "actions": self.actions, "run_mark": self.run_mark, **executed,
            "before": [self._policy_summary(c.uuid, c.product, None, c.format) for c in candidates],
            "after": [], "policy": None,
            "diff": {"before": diff_before, "after": {"policies": [], "assignments": []}},
        }
        desired = plan.desired
        if desired is None:
            return result
        uuid = executed.get("policy_uuid") or plan.keeper_uuid
        after = self._policy_summary(uuid, desired.product, desired.template_uuid, desired.data.format)
        assignments = [dict(a, policy=uuid) for a in plan.assignments]
        mapped = mapped_values(self.desired, self.mapping)
        result.update({
            "after": [after], "policy": after, "assignments": assignments,
            "diff": {"before": diff_before, "after": {
                "policies": [self._policy_view(uuid, desired.product, self.desired.description, desired.shown)],
                "assignments": assignments}},
            "settings": {label: value for label, _node, value in mapped},
            "settings_nodes": {"{}/{}".format(self.mapping["section"], node["path"]): codec.normalize(value)
                               for _label, node, value in mapped},
        })
        return result

    # -- executing -------------------------------------------------------------------------------------------
    def _execute(self, plan: PolicyPlan) -> t.Dict[str, t.Any]:
        """Make the planned calls (not in check mode); what the execution adds to the result (``policy_uuid``)."""
        if self.check_mode or not plan.calls:
            return {}
        current = plan.keeper.uuid if plan.keeper else None
        in_place = False  # the kept policy covers every wanted target
        for index, call in enumerate(plan.calls):
            try:
                if call.kind in ("unassign", "delete_policy"):
                    in_place = True
                current, found = self._call(call, current)
                self.actions.append(call.text.replace("the new policy", str(current)) + (
                    " (its answer was lost; found by the run mark)" if found else ""))
            except EsetApiError as exc:
                raise ReplacementFailed(self._failure(exc, call, plan.calls[index + 1:], plan.creates, in_place,
                                                      current, plan.others)) from None
        return {"policy_uuid": current}

    def _call(self, call: PlannedCall, current: t.Optional[str]) -> t.Tuple[t.Optional[str], bool]:
        """Make one call; the kept policy's uuid after it, and whether a lost answer was found by the run mark."""
        found = False
        if call.kind == "create_policy":
            created, found = self.api.create_marked_policy(call.args["body"], self.run_mark)
            current = str(created["uuid"])
        elif call.kind == "assign":
            assignment, found = self.api.assign_once(str(current), call.args["target"])
            rank = call.args.get("rank")
            if rank and assignment.get("rank") != rank:
                self.api.rerank(str(assignment["uuid"]), rank)
        elif call.kind == "rerank":
            self.api.rerank(str(call.args["uuid"]), int(call.args["rank"]))
        elif call.kind == "unassign":
            self.api.unassign(str(call.args["uuid"]))
        elif call.kind == "delete_policy":
            self.api.remove_policy(str(call.args["uuid"]))
        return current, found

    def _failure(self, exc: EsetApiError, call: PlannedCall, remaining: t.List[PlannedCall], keeper_new: bool,
                 in_place: bool, current: t.Optional[str], others: t.List[Candidate]) -> t.Dict[str, t.Any]:
        """The failure result: what was done, what was not, and which policy covers the targets now."""
        info: t.Dict[str, t.Any] = {"failed_step": call.text, "error": exc.to_dict(), "actions": self.actions,
                                    "not_done": [s.text for s in remaining], "rollback": None,
                                    "changed": bool(self.actions) or exc.outcome_unknown,
                                    "run_mark": self.run_mark}
        old = ", ".join(c.uuid for c in others) or "none"
        if isinstance(exc, UncertainCreate) and call.kind == "create_policy":
            info["coverage"] = (f"{exc.what} may have been created next to the old policy ({old}), which still "
                                "covers every target; run again: the rerun keeps that policy if it matches, "
                                "or removes it")
        elif self.desired.state == "absent":
            info["coverage"] = (f"the deletion stopped; of the policies named {self.desired.name!r} ({old}) those not "
                                "listed in actions are still there; run again to finish")
        elif keeper_new and not in_place and current:
            try:
                self.api.remove_policy(current)
                self.actions.append(f"rollback: deleted the new policy {current}")
                info["rollback"] = {"deleted": current, "ok": True}
                info["coverage"] = (f"rolled back: the new policy {current} was deleted again; every target keeps "
                                    f"the old policy ({old})")
            except EsetApiError as rb:
                info["rollback"] = {"deleted": None, "ok": False, "error": rb.to_dict()}
                info["coverage"] = (f"the new policy {current} could not be deleted again, so it stays next to the old "
                                    f"policy ({old}), which still covers every target; run again to finish")
        elif keeper_new and not in_place:
            info["coverage"] = f"nothing was created; every target keeps the old policy ({old})"
        elif in_place or not others:
            info["coverage"] = ("the policy {} is assigned to every wanted target{}; run again to finish "
                                "the cleanup".format(current, f"; the old policy ({old}) is still there too"
                                                     if others else ""))
        else:
            info["coverage"] = (f"the policy {current} is partly assigned; the old policy ({old}) still covers every "
                                "target; run again to finish")
        info["policy_uuid"] = current
        coverage = info["coverage"][0].upper() + info["coverage"][1:]
        info["msg"] = f"{call.text} failed: {exc}. {coverage}."
        return info


class ReplacementFailed(Exception):
    def __init__(self, info: t.Dict[str, t.Any]) -> None:
        self.info = info
        super().__init__(info["msg"])
