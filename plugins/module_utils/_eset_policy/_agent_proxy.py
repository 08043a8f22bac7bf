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

from . import _codec as codec
from ._settings_map import ALL_SERVICES, GLOBAL
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

NEW = "(new policy)"


class AgentProxyError(Exception):
    """Bad input or an unusable template; the message says what to change."""


@dataclass
class Desired:
    name: str
    description: str
    state: str
    proxy_host: t.Optional[str] = None
    proxy_port: int = 3128
    services: t.List[str] = field(default_factory=lambda: [ALL_SERVICES])
    fallback_direct: bool = True
    targets: t.Optional[t.List[str]] = None
    rank: t.Optional[int] = None
    template_policy: t.Optional[str] = None
    reveal_secrets: bool = False


@dataclass
class Candidate:
    """A policy that carries the managed name."""

    policy: t.Dict[str, t.Any]
    product: t.Optional[str]
    flat: t.Optional[t.Dict[str, t.Any]]
    decode_error: t.Optional[str]
    assignments: t.List[t.Dict[str, t.Any]]
    shown: t.Optional[t.Dict[str, t.Any]] = None  # flat, as results and diffs show it (secrets masked)

    @property
    def uuid(self) -> str:
        return str(self.policy["uuid"])


def mapped_values(desired: Desired, mapping: t.Mapping[str, t.Any]) -> t.List[t.Tuple[str, t.Dict[str, t.Any], t.Any]]:
    """``(label, node, value)`` for every node the desired state sets."""
    services = mapping["services"]
    out: t.List[t.Tuple[str, t.Dict[str, t.Any], t.Any]] = []
    use_all = ALL_SERVICES in desired.services
    mode = GLOBAL if use_all else "per_service"
    out.append(("proxy_mode", mapping["proxy_mode"], mapping["proxy_mode"]["values"][mode]))
    if use_all:
        entry = services[GLOBAL]
        out += [("services.global.use", entry["use"], True), ("services.global.host", entry["host"],
                desired.proxy_host), ("services.global.port", entry["port"], desired.proxy_port)]
    else:
        for name, entry in services.items():
            if name == GLOBAL:
                continue
            used = name in desired.services
            out.append((f"services.{name}.use", entry["use"], used))
            if used:
                out += [(f"services.{name}.host", entry["host"], desired.proxy_host),
                        (f"services.{name}.port", entry["port"], desired.proxy_port)]
    out.append(("fallback_direct", mapping["fallback_direct"], desired.fallback_direct))
    return out


def build_policy_data(desired: Desired, mapping: t.Mapping[str, t.Any],
                      template: t.Optional[codec.PolicyData]) -> t.Tuple[codec.PolicyData, t.List[str]]:
    """The desired data: the template (or an empty format 1 policy) with only the mapped values changed."""
    data = template if template is not None else codec.new_format1(mapping["section"])
    sections = data.sections()
    section = sections.get(mapping["section"])
    if section is None:
        if template is not None and data.has_archive:
            raise AgentProxyError(
                "the template policy has no settings section {!r} (it has: {}); set settings_map.section to "
                "the right one (eset_policy_info shows them)".format(mapping["section"], ", ".join(sections) or
                                                                     "none"))
        section = data.add_section(mapping["section"])
    created: t.List[str] = []
    for _label, node, value in mapped_values(desired, mapping):
        created += ["{}/{}".format(mapping["section"], p) for p in
                    codec.set_leaf(section, node["path"], value, node.get("ce_type"), data.string_scalars)]
    return data, created


class Step:
    def __init__(self, kind: str, text: str, **args: t.Any) -> None:
        self.kind = kind
        self.text = text
        self.args = args


class AgentProxyPolicy:
    """Reads the current state, computes the steps, runs them (unless check mode) and describes the result."""

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
                                      "changed or deleted; "
                                      "choose another name")
            policy = self.api.full(listed)
            feature = legacy_feature(policy)
            product, flat, shown, error = None, None, None, None
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
                    flat, shown = codec.flatten(data.sections()), self._shown(data)
            if error:
                self.warn("policy {} named {!r} cannot be decoded ({}); it will be replaced".format(
                    policy.get("uuid"), self.desired.name, error))
            found.append(Candidate(policy, product, flat, error, self.api.list_assignments(str(policy["uuid"])),
                                   shown))
        return found

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

    # -- describing --------------------------------------------------------------------------------------
    def _policy_view(self, uuid: str, product: t.Optional[str], description: t.Any,
                     flat: t.Optional[t.Dict[str, t.Any]]) -> t.Dict[str, t.Any]:
        return {"uuid": uuid, "name": self.desired.name, "description": without_run_mark(description),
                "product": product, "settings": flat}

    def _assignment_view(self, policy_uuid: str, target: t.Mapping[str, t.Any],
                         rank: t.Optional[int]) -> t.Dict[str, t.Any]:
        return {"policy": policy_uuid, "target": self._group_index().label(target), "rank": rank}

    # -- the run ---------------------------------------------------------------------------------------------
    def run(self) -> t.Dict[str, t.Any]:
        desired = self.desired
        policies = self.api.list_policies()
        candidates = self._candidates(policies)
        before = {"policies": [self._policy_view(c.uuid, c.product, c.policy.get("description"), c.shown)
                               for c in candidates],
                  "assignments": [self._assignment_view(c.uuid, a.get("target") or {}, a.get("rank"))
                                  for c in candidates for a in c.assignments]}
        if desired.state == "absent":
            removals = [Step("delete_policy", f"delete policy {c.uuid}", uuid=c.uuid) for c in candidates]
            after: t.Dict[str, t.Any] = {"policies": [], "assignments": []}
            result = self._execute(removals, keeper_new=False, keeper_uuid=None, others=candidates)
            result.update({"diff": {"before": before, "after": after}, "policy": None})
            return result

        template, product, template_uuid = (None, str(self.mapping["product"]), None)
        if desired.template_policy:
            template, product, template_uuid = self._template(policies)
        data, created_nodes = build_policy_data(desired, self.mapping, template)
        if created_nodes and template is not None:
            self.warn("the template policy had no node at {}; it was added. If the settings map is right this is "
                      "expected for unset values; otherwise check the node names with eset_policy_info".format(
                          ", ".join(created_nodes)))
        desired_flat = codec.flatten(data.sections())
        desired_shown = self._shown(data)
        data_b64 = data.encode_b64()

        keeper: t.Optional[Candidate] = None
        for cand in candidates:
            if cand.flat == desired_flat and cand.product == product and \
                    without_run_mark(cand.policy.get("description") or "") == desired.description:
                keeper = cand
                break
        others = [c for c in candidates if c is not keeper]
        keeper_uuid = keeper.uuid if keeper else NEW
        steps: t.List[Step] = []
        if keeper is None:
            steps.append(Step("create_policy", "create policy {!r}{}".format(
                desired.name, " (replacing {})".format(", ".join(c.uuid for c in others)) if others else ""),
                body=legacy_policy_body(desired.name, with_run_mark(desired.description, self.run_mark), product,
                                        data_b64)))

        # Targets the kept policy must cover, each with the rank it should have (None: wherever it lands).
        wanted: t.List[t.Tuple[t.Tuple[str, str], t.Dict[str, str], t.Optional[int]]] = []
        if desired.targets is not None:
            index = self._group_index()
            seen: t.Set[str] = set()
            for ref in desired.targets:
                try:
                    uuid, _path = index.resolve(ref)
                except ValueError as exc:
                    raise AgentProxyError(f"targets: {exc}") from None
                if uuid not in seen:
                    seen.add(uuid)
                    target = {"deviceGroupUuid": uuid}
                    wanted.append((target_key(target), target, desired.rank))
        else:
            order: t.Dict[t.Tuple[str, str], t.Tuple[t.Dict[str, str], t.Optional[int]]] = {}
            for cand in ([keeper] if keeper else []) + others:
                for a in cand.assignments:
                    target = dict(a.get("target") or {})
                    key = target_key(target)
                    rank = a.get("rank")
                    known = order.get(key)
                    if known is None or (rank is not None and (known[1] is None or rank < known[1])):
                        order[key] = (target, rank if desired.rank is None else desired.rank)
            wanted = [(key, target, rank) for key, (target, rank) in order.items()]
            if keeper is not None and desired.rank is None:
                # the kept policy's own assignments keep their rank
                wanted = [(key, target, None if any(target_key(a.get("target") or {}) == key
                                                    for a in keeper.assignments) else rank)
                          for key, target, rank in wanted]

        old_rank: t.Dict[t.Tuple[str, str], int] = {}
        for cand in others:
            for a in cand.assignments:
                key = target_key(a.get("target") or {})
                rank = a.get("rank")
                if isinstance(rank, int) and (key not in old_rank or rank < old_rank[key]):
                    old_rank[key] = rank
        have = {}
        if keeper is not None:
            for a in sorted(keeper.assignments, key=lambda a: a.get("rank") or 0):
                key = target_key(a.get("target") or {})
                if key in have:
                    steps.append(Step("unassign", "remove the duplicate assignment {} of {}".format(
                        a.get("uuid"), self._group_index().label(a.get("target") or {})), uuid=a.get("uuid")))
                else:
                    have[key] = a
        after_assignments = []
        for key, target, rank in wanted:
            label = self._group_index().label(target)
            desired_rank = rank if rank is not None else old_rank.get(key) if desired.rank is None else desired.rank
            current = have.get(key)
            if current is None:
                steps.append(Step("assign", "assign {} to {}{}".format(
                    "the new policy" if keeper is None else keeper_uuid, label,
                    f" at rank {desired_rank}" if desired_rank else ""), target=target, rank=desired_rank))
                after_assignments.append(self._assignment_view(keeper_uuid, target, desired_rank))
            else:
                if desired.rank is not None and current.get("rank") != desired.rank:
                    steps.append(Step("rerank", "move the assignment on {} from rank {} to {}".format(
                        label, current.get("rank"), desired.rank), uuid=current.get("uuid"), rank=desired.rank))
                after_assignments.append(self._assignment_view(keeper_uuid, target, desired.rank or
                                                               current.get("rank")))
        wanted_keys = {key for key, _target, _rank in wanted}
        for key, a in have.items():
            if key not in wanted_keys:
                steps.append(Step("unassign", "unassign {} from {}".format(
                    keeper_uuid, self._group_index().label(a.get("target") or {})), uuid=a.get("uuid")))
        for cand in others:
            steps.append(Step("delete_policy", "delete the old policy {}{}".format(
                cand.uuid, " (it could not be decoded)" if cand.decode_error else ""), uuid=cand.uuid))

        result = self._execute(steps, keeper_new=keeper is None, keeper_uuid=None if keeper is None else keeper_uuid,
                               others=others, body=steps[0].args.get("body") if keeper is None else None)
        final_uuid = result.get("policy_uuid") or keeper_uuid
        after = {"policies": [self._policy_view(final_uuid, product, desired.description, desired_shown)],
                 "assignments": [dict(a, policy=final_uuid) for a in after_assignments]}
        result.update({
            "diff": {"before": before, "after": after},
            "policy": {"uuid": final_uuid, "name": desired.name, "product": product,
                       "template_uuid": template_uuid, "format": data.format},
            "settings": {label: value for label, _node, value in mapped_values(desired, self.mapping)},
            "settings_nodes": {"{}/{}".format(self.mapping["section"], node["path"]): codec.normalize(value)
                               for _label, node, value in mapped_values(desired, self.mapping)},
            "assignments": after["assignments"],
        })
        return result

    # -- executing -------------------------------------------------------------------------------------------
    def _execute(self, steps: t.List[Step], keeper_new: bool, keeper_uuid: t.Optional[str],
                 others: t.List[Candidate], body: t.Optional[t.Mapping[str, t.Any]] = None) -> t.Dict[str, t.Any]:
        result: t.Dict[str, t.Any] = {"changed": bool(steps), "replaced": keeper_new and bool(others),
                                      "removed_policies": [c.uuid for c in others],
                                      "planned": [s.text for s in steps], "actions": self.actions,
                                      "run_mark": self.run_mark}
        if self.check_mode or not steps:
            return result
        current = keeper_uuid
        in_place = False  # the kept policy covers every wanted target
        for index, step in enumerate(steps):
            found = False
            try:
                if step.kind == "create_policy":
                    created, found = self.api.create_marked_policy(step.args["body"], self.run_mark)
                    current = str(created["uuid"])
                    result["policy_uuid"] = current
                elif step.kind == "assign":
                    assignment, found = self.api.assign_once(str(current), step.args["target"])
                    rank = step.args.get("rank")
                    if rank and assignment.get("rank") != rank:
                        self.api.rerank(str(assignment["uuid"]), rank)
                elif step.kind == "rerank":
                    self.api.rerank(str(step.args["uuid"]), int(step.args["rank"]))
                elif step.kind == "unassign":
                    in_place = True
                    self.api.unassign(str(step.args["uuid"]))
                elif step.kind == "delete_policy":
                    in_place = True
                    self.api.remove_policy(str(step.args["uuid"]))
                self.actions.append(step.text.replace("the new policy", str(current)) + (
                    " (its answer was lost; found by the run mark)" if found else ""))
            except EsetApiError as exc:
                raise ReplacementFailed(self._failure(exc, step, steps[index + 1:], keeper_new, in_place, current,
                                                      others)) from None
        result["policy_uuid"] = current
        return result

    def _failure(self, exc: EsetApiError, step: Step, remaining: t.List[Step], keeper_new: bool, in_place: bool,
                 current: t.Optional[str], others: t.List[Candidate]) -> t.Dict[str, t.Any]:
        info: t.Dict[str, t.Any] = {"failed_step": step.text, "error": exc.to_dict(), "actions": self.actions,
                                    "not_done": [s.text for s in remaining], "rollback": None,
                                    "changed": bool(self.actions) or exc.outcome_unknown,
                                    "run_mark": self.run_mark}
        old = ", ".join(c.uuid for c in others) or "none"
        if isinstance(exc, UncertainCreate) and step.kind == "create_policy":
            info["coverage"] = (f"{exc.what} may have been created next to the old policy ({old}), which still "
                                "covers every target; run again: the rerun keeps that policy if it matches, "
                                "or removes it")
        elif self.desired.state == "absent":
            info["coverage"] = (f"the deletion stopped; of the policies named {self.desired.name!r} ({old}) those not "
                                "listed in actions are still there; run again to finish")
        elif keeper_new and not in_place and current and current != NEW:
            try:
                self.api.remove_policy(current)
                self.actions.append(f"rollback: deleted the new policy {current}")
                info["rollback"] = {"deleted": current, "ok": True}
                info["coverage"] = (f"rolled back: the new policy {current} was deleted again; every target keeps "
                                    "the old "
                                    f"policy ({old})")
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
        info["policy_uuid"] = current if current != NEW else None
        coverage = info["coverage"][0].upper() + info["coverage"][1:]
        info["msg"] = f"{step.text} failed: {exc}. {coverage}."
        return info


class ReplacementFailed(Exception):
    def __init__(self, info: t.Dict[str, t.Any]) -> None:
        self.info = info
        super().__init__(info["msg"])
