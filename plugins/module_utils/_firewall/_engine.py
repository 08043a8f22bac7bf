# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# One run of the firewall capability: pick the backend, read, compute, diff, and (unless check mode) apply,
# verify, then persist or arm the rollback. The module is a thin wrapper around run().
from __future__ import annotations

import os
import socket
import typing as t
from dataclasses import dataclass, field

from .._host._files import FileChange
from .._host._run import Command, CommandError, Runner
from . import _refresh, _rollback
from ._base import Detection, FirewallBackend, Settings
from ._firewalld import FirewalldBackend
from ._iptables import IptablesBackend
from ._model import ApplyError, FirewallError, Policy, PolicySpec, Resolver, State, build_policy
from ._nftables import NftablesBackend
from ._ufw import UfwBackend

# Registered implementations. A new backend adds itself here (and to AUTO_ORDER); see README.md.
BACKENDS: t.Dict[str, t.Type[FirewallBackend]] = {
    "nftables": NftablesBackend,
    "iptables": IptablesBackend,
    "firewalld": FirewalldBackend,
    "ufw": UfwBackend,
}
# Every backend name the module accepts, implemented or not yet.
KNOWN_BACKENDS = ("nftables", "firewalld", "iptables", "ufw")
# auto: the first backend in this order that is a running daemon (firewalld, ufw), already holds our objects,
# carries a default-deny egress, or has rules at all; failing all that, the first usable in FALLBACK_ORDER.
AUTO_ORDER = ("firewalld", "ufw", "iptables", "nftables")
FALLBACK_ORDER = ("nftables", "iptables")
DAEMON_BACKENDS = ("firewalld", "ufw")


def make_backend(name: str, runner: Runner, settings: Settings) -> FirewallBackend:
    if name not in KNOWN_BACKENDS:
        raise FirewallError(f"backend {name!r} is unknown (expected auto or one of {', '.join(KNOWN_BACKENDS)})")
    if name not in BACKENDS:
        raise FirewallError(f"backend {name} is not implemented in this version of protectnet.epns (implemented: "
                            f"{', '.join(sorted(BACKENDS))})")
    return BACKENDS[name](runner, settings)


def select_backend(wanted: str, runner: Runner, settings: Settings) -> t.Tuple[FirewallBackend, str,
                                                                               t.Dict[str, Detection]]:
    """The backend to use and a sentence saying why (auto says which one it picked)."""
    if wanted != "auto":
        backend = make_backend(wanted, runner, settings)
        backend.require_usable()
        return backend, f"{wanted} (as requested)", {}
    found = {name: cls.detect(runner) for name, cls in BACKENDS.items()}
    usable = {name: d for name, d in found.items() if d.installed and d.usable}
    reasons = [
        ("is the running firewall daemon", lambda d: d.name in DAEMON_BACKENDS and d.active),
        ("already holds the EPNS rules", lambda d: d.owns),
        ("carries the host's default-deny egress", lambda d: d.deny),
        ("has the host's rules", lambda d: d.active),
    ]
    for reason, test in reasons:
        for name in AUTO_ORDER:
            if name in usable and test(usable[name]):
                return make_backend(name, runner, settings), f"auto: {name} {reason} ({usable[name].detail})", found
    for name in FALLBACK_ORDER:
        if name in usable:
            return (make_backend(name, runner, settings),
                    f"auto: {name} (no firewall in use yet; {name} is installed)", found)
    details = "; ".join(f"{name}: {d.detail}" for name, d in found.items())
    raise FirewallError(f"backend auto: no usable firewall backend on this host ({details})")


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


def run(request: Request, runner: Runner, check_mode: bool, resolver: Resolver = socket.getaddrinfo,
        sources: t.Optional[t.Mapping[str, str]] = None) -> t.Dict[str, t.Any]:
    """Raises FirewallError (nothing changed) or ApplyError (the previous state was restored)."""
    settings = Settings(persist=request.persist, options=dict(request.options))
    if request.state == "present" and request.spec is None:
        raise FirewallError("state=present needs a policy")
    policy = build_policy(request.spec, resolver) if request.state == "present" and request.spec else None
    backend, reason, _found = select_backend(request.backend, runner, settings)
    current = backend.read_current()
    desired = backend.compute_desired(policy, current) if policy is not None else State()
    change = backend.diff(current, desired)
    plan = backend.plan(current, desired)
    files = backend.persist(desired)
    config = {"backend": backend.name, "persist": request.persist, "options": dict(request.options),
              "policy": request.spec.as_dict() if request.spec else {}}
    job_files, job_before, job_after = _refresh.job_files(
        request.state == "present" and request.refresh, config, request.python, request.refresh_interval, sources)
    files += job_files
    for compat in current.meta.get("compat_deny", []):
        backend.warnings.append(
            f"the default-deny chain {compat['family']} {compat['table']} {compat['chain']} is managed by "
            "iptables-nft: use backend iptables (iptables_variant nft) to open EPNS through it")
    result: t.Dict[str, t.Any] = {
        "changed": change.changed or bool(files),
        "backend": backend.name,
        "backend_reason": reason,
        "destinations": _policy_doc(policy),
        "resolved": dict(policy.sources) if policy else {},
        "changes": change.as_dict(),
        "files": [_file_doc(f) for f in files],
        "commands": [c.as_dict() for c in plan.commands],
        "diff": [{"before_header": f"{backend.name}: EPNS objects before", "after_header":
                  f"{backend.name}: EPNS objects after", "before": current.render(), "after": desired.render()}]
        + [_file_diff(f) for f in files],
        "rollback": None,
    }
    if backend.name == "iptables":
        result["iptables_variant"] = current.meta.get("variant")
    if backend.name == "firewalld":
        result["firewalld_mode"] = f"{current.meta.get('mode')} (firewalld {current.meta.get('version')})"
    result["warnings"] = backend.warnings
    result["not_applied"] = backend.not_applied
    if check_mode or not result["changed"]:
        return result
    armed = _rollback.pending()
    if armed:
        raise FirewallError(f"a previous firewall change ({armed[0]}) is still waiting for its confirmation; "
                            "wait for it to be confirmed or rolled back, then run again")
    if plan:
        backend.apply(plan)  # ApplyError: the backend put the previous state back
        after = backend.read_current()
        leftover = backend.diff(after, desired)
        if leftover.changed:
            backend.apply(backend.plan(after, current))
            raise ApplyError("the ruleset did not match the plan after applying it, so it was put back: "
                             + repr(leftover.as_dict()))
        revert = backend.plan(after, current)
    else:
        revert = None
    if request.rollback_seconds and plan and revert is not None:
        result["rollback"] = _rollback.arm(revert.commands, [f.as_dict() for f in files], request.rollback_seconds,
                                           before=[c.as_dict() for c in job_before],
                                           after=[c.as_dict() for c in job_after])
        return result
    _write_files(files, job_before, job_after, runner, backend, revert)
    return result


def _write_files(files: t.Sequence[FileChange], before: t.Sequence[Command], after: t.Sequence[Command],
                 runner: Runner, backend: FirewallBackend, revert: t.Optional[t.Any]) -> None:
    """Write the files; if one fails, put back the files already written and the runtime state."""
    done: t.List[FileChange] = []
    created: t.List[str] = []
    current = "the refresh timer"
    try:
        for command in before:
            runner.run(command.argv, command.stdin)
        for change in files:
            current = change.path
            created += _missing_directories(change.path)
            change.write()
            done.append(change)
        current = "the refresh timer"
        for command in after:
            runner.check(command.argv, command.stdin, what="enabling the refresh timer")
    except (OSError, FirewallError, CommandError) as exc:
        for change in reversed(done):
            try:
                change.restore()
            except OSError:
                pass
        _remove_empty(created)
        if revert:
            backend.apply(revert)
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
