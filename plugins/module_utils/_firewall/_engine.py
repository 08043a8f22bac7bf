# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# One run of the firewall capability in two calls: plan() reads what each owner's backend holds and computes the
# change (nothing is changed); apply() applies it owner by owner, reads each back and compares it with the plan,
# then writes the files or arms the rollback, and refuses while an earlier change waits for its confirmation.
# epns_firewall runs one owner through run(); wol_multicast's _hostnet runs two (its filter and its TTL table).
from __future__ import annotations

import os
import socket
import typing as t
from dataclasses import dataclass, field

from .._host._files import FileChange
from .._host._run import Command, CommandError, Runner
from . import _refresh, _rollback
from ._backends import select_backend
from ._base import BackendOptions, FirewallBackend, Plan
from ._model import ApplyError, Diff, FirewallError, Policy, PolicySpec, Resolver, State, build_policy


@dataclass
class Request:
    state: str = "present"
    backend: str = "auto"
    spec: t.Optional[PolicySpec] = None
    persist: bool = True
    rollback_seconds: int = 0
    refresh: bool = False
    refresh_interval: int = 15
    options: t.Dict[str, t.Any] = field(default_factory=dict)
    python: str = "/usr/bin/python3"


def _policy_doc(policy: t.Optional[Policy]) -> t.Dict[str, t.Any]:
    if policy is None:
        return {}
    return {g.name: {"ports": list(g.ports), "ipv4": list(g.ipv4), "ipv6": list(g.ipv6)} for g in policy.groups}


def _file_doc(change: FileChange) -> t.Dict[str, str]:
    action = "removed" if change.content is None else "created" if change.before is None else "updated"
    return {"path": change.path, "action": action}


def _file_diff(change: FileChange) -> t.Dict[str, str]:
    if "/lib/" in change.path and change.path.endswith(".py"):
        size = len(change.content or change.before or "")
        summary = f"(refresh job code, {size} bytes)\n"
        return {"before_header": change.path, "after_header": change.path,
                "before": "" if change.before is None else summary, "after": "" if change.content is None else summary}
    return {"before_header": change.path, "after_header": change.path,
            "before": change.before or "", "after": change.content or ""}


@dataclass
class OwnerPlan:
    """One owner's part of a run: what its backend holds, what it wants, the steps and the files between them."""

    backend: FirewallBackend
    current: State
    desired: State
    diff: Diff
    steps: Plan
    files: t.List[FileChange]
    revert: t.Optional[Plan] = None  # set by apply(): the plan from what was read back to current

    @property
    def changed(self) -> bool:
        return bool(self.diff.changed or self.files)


@dataclass
class RunPlan:
    """Every owner of one run, in the order they are applied, and the files the run writes (the owners' first, then
    the others: refresh job, boot hooks) with the commands to run before and after writing them."""

    owners: t.List[OwnerPlan]
    files: t.List[FileChange]
    before: t.List[Command] = field(default_factory=list)
    after: t.List[Command] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(o.diff.changed for o in self.owners) or bool(self.files)


def plan(owners: t.Sequence[t.Tuple[FirewallBackend, t.Optional[Policy]]], files: t.Sequence[FileChange] = (),
         before: t.Sequence[Command] = (), after: t.Sequence[Command] = ()) -> RunPlan:
    """Read and compute only. policy None: remove what the owner holds. A file that two owners edit (the nftables
    service configuration) is edited by the later one from the earlier one's result, so the last writer keeps both."""
    planned: t.Dict[str, t.Optional[str]] = {}
    parts: t.List[OwnerPlan] = []
    for backend, policy in owners:
        current = backend.read_current()
        desired = backend.compute_desired(policy, current) if policy is not None else State()
        owner_files = backend.persist(desired, planned)
        planned.update((f.path, f.content) for f in owner_files)
        parts.append(OwnerPlan(backend, current, desired, backend.diff(current, desired),
                               backend.plan(current, desired), owner_files))
    return RunPlan(parts, [f for part in parts for f in part.files] + list(files), list(before), list(after))


def apply(run_plan: RunPlan, runner: Runner, rollback_seconds: int = 0) -> t.Optional[t.Dict[str, t.Any]]:
    """Apply a plan: raises FirewallError (nothing changed) or ApplyError (what this run changed was put back).
    With rollback_seconds, the files wait for the confirmation and the armed rollback is returned."""
    armed = _rollback.pending() if run_plan.owners else []
    if armed:
        raise FirewallError(f"a previous firewall change ({armed[0]}) is still waiting for its confirmation; "
                            "wait for it to be confirmed or rolled back, then run again")
    _apply_owners(run_plan.owners)
    reverts = [o.revert for o in reversed(run_plan.owners) if o.revert is not None]
    if rollback_seconds and reverts:
        return _rollback.arm([c for revert in reverts for c in revert.commands],
                             [f.as_dict() for f in run_plan.files], rollback_seconds,
                             before=[c.as_dict() for c in run_plan.before], after=[c.as_dict() for c in run_plan.after])
    _write_files(run_plan, runner)
    return None


def _read_back(owner: OwnerPlan) -> State:
    return owner.backend.read_current()


def _apply_owners(owners: t.Sequence[OwnerPlan]) -> None:
    """Each owner's steps, then a read-back that must match what it wanted (ufw, for one, answers rc 0 for a skipped
    add); on a failure the owners already applied are put back, newest first."""
    done: t.List[OwnerPlan] = []
    try:
        for owner in owners:
            if not owner.steps:
                continue
            owner.backend.apply(owner.steps)  # ApplyError: the backend put this owner's previous state back
            after = _read_back(owner)
            owner.revert = owner.backend.plan(after, owner.current)
            done.append(owner)
            leftover = owner.backend.diff(after, owner.desired)
            if leftover.changed:
                raise ApplyError("the ruleset did not match the plan after applying it, so it was put back: "
                                 + repr(leftover.as_dict()))
    except FirewallError as exc:
        _revert(done, exc)
        raise


def _revert(owners: t.Sequence[OwnerPlan], cause: Exception) -> None:
    failed: t.List[str] = []
    for owner in reversed(owners):
        try:
            owner.backend.apply(t.cast(Plan, owner.revert))
        except FirewallError as exc:
            failed.append(str(exc))
    if failed:
        raise ApplyError(f"{cause}; putting back what this run changed failed too: {'; '.join(failed)}",
                         rolled_back=False) from cause


def run(request: Request, runner: Runner, check_mode: bool, resolver: Resolver = socket.getaddrinfo,
        sources: t.Optional[t.Mapping[str, str]] = None) -> t.Dict[str, t.Any]:
    """One epns_firewall run. Raises FirewallError (nothing changed) or ApplyError (the previous state was restored)."""
    if request.state == "present" and request.spec is None:
        raise FirewallError("state=present needs a policy")
    policy = build_policy(request.spec, resolver) if request.state == "present" and request.spec else None
    options = BackendOptions(persist=request.persist, options=dict(request.options))
    backend, reason = select_backend(request.backend, runner, options)
    config = {"backend": backend.name, "persist": request.persist, "options": dict(request.options),
              "policy": request.spec.as_dict() if request.spec else {}}
    job_files, job_before, job_after = _refresh.job_files(
        request.state == "present" and request.refresh, config, request.python, request.refresh_interval, sources)
    run_plan = plan([(backend, policy)], job_files, job_before, job_after)
    result = _result(run_plan, reason, policy)
    if not check_mode and result["changed"]:
        result["rollback"] = apply(run_plan, runner, request.rollback_seconds)
    return result


def _result(run_plan: RunPlan, reason: str, policy: t.Optional[Policy]) -> t.Dict[str, t.Any]:
    """The module's result, before anything is applied (check mode returns it as it is)."""
    owner = run_plan.owners[0]
    backend, current = owner.backend, owner.current
    for compat in current.meta.get("compat_deny", []):
        backend.warnings.append(
            f"the default-deny chain {compat['family']} {compat['table']} {compat['chain']} is managed by "
            "iptables-nft: use backend iptables (iptables_variant nft) to open EPNS through it")
    result: t.Dict[str, t.Any] = {
        "changed": run_plan.changed,
        "backend": backend.name,
        "backend_reason": reason,
        "destinations": _policy_doc(policy),
        "resolved": dict(policy.sources) if policy else {},
        "changes": owner.diff.as_dict(),
        "before": owner.current.as_dict(),
        "after": owner.desired.as_dict(),
        "files": [_file_doc(f) for f in run_plan.files],
        "commands": [c.as_dict() for c in owner.steps.commands],
        "diff": [{"before_header": f"{backend.name}: EPNS objects before", "after_header":
                  f"{backend.name}: EPNS objects after", "before": current.render(), "after": owner.desired.render()}]
        + [_file_diff(f) for f in run_plan.files],
        "rollback": None,
    }
    if backend.name == "iptables":
        result["iptables_variant"] = current.meta.get("variant")
    if backend.name == "firewalld":
        result["firewalld_mode"] = f"{current.meta.get('mode')} (firewalld {current.meta.get('version')})"
    result["warnings"] = backend.warnings
    result["not_applied"] = backend.not_applied
    return result


def _write_files(run_plan: RunPlan, runner: Runner) -> None:
    """Write the files; if one fails, put back the files already written and the owners' runtime state."""
    done: t.List[FileChange] = []
    created: t.List[str] = []
    current = "the refresh timer"
    try:
        for command in run_plan.before:
            runner.run(command.argv, command.stdin)
        for change in run_plan.files:
            current = change.path
            created += _missing_directories(change.path)
            change.write()
            done.append(change)
        current = "the refresh timer"
        for command in run_plan.after:
            runner.check(command.argv, command.stdin, what="enabling the refresh timer")
    except (OSError, FirewallError, CommandError) as exc:
        for change in reversed(done):
            try:
                change.restore()
            except OSError:
                pass
        _remove_empty(created)
        _revert([o for o in run_plan.owners if o.revert is not None], exc)
        raise ApplyError(f"writing {current} failed ({exc}); "
                         "the previous firewall state and files were put back") from exc


def _missing_directories(path: str) -> t.List[str]:
    """The directories above path that do not exist yet, outermost first (writing path creates them)."""
    missing: t.List[str] = []
    directory = os.path.dirname(path)
    while directory and directory != os.path.dirname(directory) and not os.path.isdir(directory):
        missing.insert(0, directory)
        directory = os.path.dirname(directory)
    return missing


def _remove_empty(directories: t.Sequence[str]) -> None:
    """Undo the directories a failed write created (innermost first); one that holds anything stays."""
    for directory in reversed(directories):
        try:
            os.rmdir(directory)
        except OSError:
            pass
