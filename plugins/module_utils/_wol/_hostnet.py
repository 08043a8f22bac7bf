# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""The ESET PROTECT server host's own network for Wake-on-LAN, in one run: the multicast routes (`_routes`), UDP
egress to every destination through the shared firewall backends, and the multicast TTL rewrite.

The firewall objects carry the tag FIREWALL_TAG, apart from epns_firewall's: nftables table inet protectnet_wol
(which also rewrites the TTL), iptables chain PROTECTNET_WOL and ipsets protectnet_wol_*, firewalld policy and
ipsets protectnet_wol*, ufw rules commented `protectnet_wol ...`. iptables, firewalld and ufw cannot rewrite a TTL
(iptables could, in its mangle table, which the collection does not manage), so beside them the TTL rewrite is a
small nftables table of its own (TTL_TAG) that rewrites and never filters."""
from __future__ import annotations

import typing as t

from .._firewall import _engine
from .._firewall._backends import select_backend
from .._firewall._base import BackendOptions, FirewallBackend
from .._firewall._model import FirewallError, Group, Policy
from .._firewall._nftables import NftablesBackend
from .._host._files import FileChange
from .._host._run import Runner
from .._result import command, file_entry
from . import _routes
from ._routes import ROUTE_PROTO, RouteError

FIREWALL_TAG = "protectnet_wol"
TTL_TAG = "protectnet_wolttl"
GROUP = "wol"
MULTICAST = ("ipv4_multicast", "ipv6_multicast")

__all__ = ["ROUTE_PROTO", "HostNetError", "apply", "firewall_backend", "wol_policy"]


class HostNetError(Exception):
    pass


def wol_policy(destinations: t.Sequence[t.Mapping[str, t.Any]], port: int, ttl: t.Optional[int],
               kinds: t.Optional[t.Sequence[str]] = None) -> Policy:
    """UDP to the destinations (of the given kinds only); ttl is written into each rule's comment by nftables."""
    chosen = [d for d in destinations if kinds is None or d["kind"] in kinds]
    v4 = tuple(sorted({d["address"] + "/32" for d in chosen if d["family"] == "ipv4"}))
    v6 = tuple(sorted({d["address"] + "/128" for d in chosen if d["family"] == "ipv6"}))
    return Policy((Group(GROUP, (port,), v4, v6, "udp", ttl),))


def firewall_backend(wanted: str, runner: Runner, persist: bool) -> t.Tuple[t.Any, str]:
    options = BackendOptions(persist=persist, options={"tag": FIREWALL_TAG})
    backend, reason = select_backend(wanted, runner, options)
    return backend, reason


# One firewall owner of this run: its backend and the policy it should hold (None: remove what it holds).
Owner = t.Tuple[FirewallBackend, t.Optional[Policy]]


def _owner_summary(owner: _engine.OwnerPlan) -> t.Dict[str, t.Any]:
    return {"changes": owner.diff.as_dict(), "files": _file_docs(owner.files),
            "commands": [c.as_dict() for c in owner.steps.commands]}


def _file_docs(files: t.Sequence[FileChange]) -> t.List[t.Dict[str, str]]:
    return [file_entry(f.path, "removed" if f.content is None else "created" if f.before is None else "updated")
            for f in files]


def _ttl_owner(runner: Runner, filter_backend: str, destinations: t.Sequence[t.Mapping[str, t.Any]], port: int,
               ttl: t.Optional[int], state: str, persist: bool) -> t.Tuple[t.Optional[Owner], t.Dict[str, t.Any]]:
    """The TTL table beside a firewall that cannot rewrite the TTL; wanted only for multicast groups."""
    multicast = [d for d in destinations if d["kind"] in MULTICAST]
    wanted = bool(state == "present" and ttl and multicast and filter_backend != "nftables")
    if filter_backend == "nftables" and state == "present":
        info: t.Dict[str, t.Any] = {"ttl": ttl, "by": "the nftables rules of table inet protectnet_wol" if ttl
                                    else "nothing (multicast_ttl 0)"}
    else:
        info = {"ttl": ttl if wanted else None, "by": f"nftables table inet {TTL_TAG}" if wanted else "nothing"}
    if not runner.which("nft"):
        if wanted:
            raise FirewallError(
                f"multicast_ttl {ttl}: with firewall backend {filter_backend} the TTL is rewritten by a small "
                f"nftables table (inet {TTL_TAG}), and the nft command is not installed (package nftables); install "
                "it, or set multicast_ttl: 0 to leave the TTL the ESET PROTECT Server sets")
        return None, info
    ttl_backend = NftablesBackend(runner, BackendOptions(persist=persist, options={"tag": TTL_TAG, "ttl_only": True}))
    return (ttl_backend, wol_policy(destinations, port, ttl, MULTICAST) if wanted else None), info


class _RoutePlan:
    """The multicast routes: found, wanted, the commands between them and the boot hooks that keep them."""

    def __init__(self, runner: Runner, destinations: t.Sequence[t.Mapping[str, t.Any]], state: str,
                 interface: t.Optional[str], persist: bool) -> None:
        self.current = _routes.read_routes(runner)
        self.interface: t.Optional[str] = None
        self.want: t.Dict[str, str] = {}
        if state == "present":
            self.interface = interface or _routes.default_interface(runner)
            if not self.interface:
                raise HostNetError("no interface given and the host has no default route: set 'interface'")
            _routes.check_interface(runner, self.interface)
            self.want = _routes.desired_routes(destinations, self.interface)
        self.commands = _routes.route_commands(self.current, self.want)
        self.hook_files, self.warnings = _routes.hook_files(self.want, persist)

    def summary(self) -> t.Dict[str, t.Any]:
        return {"before": self.current, "after": self.want, "commands": [command(c) for c in self.commands],
                "files": _file_docs(self.hook_files)}

    def diff_lines(self) -> t.Tuple[t.List[str], t.List[str]]:
        before = [f"route {d} dev {v} proto {ROUTE_PROTO}" for d, v in sorted(self.current.items())]
        after = [f"route {d} dev {v} proto {ROUTE_PROTO}" for d, v in sorted(self.want.items())]
        return (before + [f"file {f.path}" for f in self.hook_files if f.before is not None],
                after + [f"file {f.path}" for f in self.hook_files if f.content is not None])


def apply(runner: Runner, destinations: t.Sequence[t.Mapping[str, t.Any]], port: int, *, state: str,
          interface: t.Optional[str], ttl: t.Optional[int], routes: bool, firewall: bool, backend_name: str,
          persist: bool, check_mode: bool) -> t.Dict[str, t.Any]:
    """One run for the host network. Returns {changed, interface, routes, firewall, warnings, diff, before, after}
    (before/after: the owned routes and firewall objects). Everything is read and computed before anything
    changes; a failure part-way puts back what the run changed."""
    out: t.Dict[str, t.Any] = {"changed": False, "interface": None, "routes": {}, "firewall": {}, "warnings": [],
                               "before": {}, "after": {}}
    before_lines: t.List[str] = []
    after_lines: t.List[str] = []
    try:
        route_plan = _RoutePlan(runner, destinations, state, interface, persist) if routes else None
    except RouteError as exc:
        raise HostNetError(str(exc)) from exc
    if route_plan is not None:
        out["interface"], out["routes"] = route_plan.interface, route_plan.summary()
        out["warnings"] += route_plan.warnings
        before_lines, after_lines = route_plan.diff_lines()
        out["before"]["routes"], out["after"]["routes"] = route_plan.current, route_plan.want
    hook_files = route_plan.hook_files if route_plan is not None else []
    if firewall:
        run_plan, out["firewall"] = _plan_firewall(runner, destinations, port, state, ttl, backend_name, persist,
                                                   hook_files)
    else:
        run_plan = _engine.plan([], hook_files)
    _owned_objects(out, run_plan)
    for owner in run_plan.owners:
        before_lines += owner.current.render().splitlines()
        after_lines += owner.desired.render().splitlines()
    out["changed"] = bool((route_plan is not None and route_plan.commands) or run_plan.changed)
    if not check_mode and out["changed"]:
        _apply(runner, route_plan, run_plan)
    for owner in run_plan.owners:
        out["warnings"] += owner.backend.warnings
    out["diff"] = {"before": "\n".join(before_lines) + ("\n" if before_lines else ""),
                   "after": "\n".join(after_lines) + ("\n" if after_lines else "")}
    return out


def _owned_objects(out: t.Dict[str, t.Any], run_plan: _engine.RunPlan) -> None:
    """before/after of the firewall owners: the filter is the last owner, a TTL table the one before it."""
    for key, owner in zip(("firewall", "multicast_ttl"), reversed(run_plan.owners)):
        out["before"][key], out["after"][key] = owner.current.as_dict(), owner.desired.as_dict()


def _plan_firewall(runner: Runner, destinations: t.Sequence[t.Mapping[str, t.Any]], port: int, state: str,
                   ttl: t.Optional[int], backend_name: str, persist: bool,
                   hook_files: t.Sequence[FileChange]) -> t.Tuple[_engine.RunPlan, t.Dict[str, t.Any]]:
    """The engine's plan for the TTL table (when one is needed) and the filter, and the module's firewall result."""
    backend, reason = firewall_backend(backend_name, runner, persist)
    # the TTL first: rewriting the TTL of packets the firewall still drops harms nothing
    ttl_owner, ttl_info = _ttl_owner(runner, backend.name, destinations, port, ttl, state, persist)
    owners = [ttl_owner] if ttl_owner else []
    owners.append((backend, wol_policy(destinations, port, ttl if backend.name == "nftables" else None)
                   if state == "present" else None))
    run_plan = _engine.plan(owners, hook_files)
    if ttl_owner:
        ttl_info.update(_owner_summary(run_plan.owners[0]))
    return run_plan, {"backend": backend.name, "backend_reason": reason, **_owner_summary(run_plan.owners[-1]),
                      "multicast_ttl": ttl_info}


def _run_routes(runner: Runner, cmds: t.Sequence[t.Sequence[str]]) -> None:
    for cmd in cmds:
        rc, o, e = runner.run(cmd)
        if rc != 0:
            raise HostNetError(f"{' '.join(cmd)} failed: {(e or o).strip()}")


def _apply(runner: Runner, route_plan: t.Optional[_RoutePlan], run_plan: _engine.RunPlan) -> None:
    """Routes, then the engine's apply (the firewall owners, their files, the boot hooks last). The engine puts back
    its own part when it fails; the routes are put back here, from what is there now."""
    if route_plan is None or not route_plan.commands:
        _engine.apply(run_plan, runner)
        return
    try:
        _run_routes(runner, route_plan.commands)
        _engine.apply(run_plan, runner)
    except Exception as exc:
        try:
            _run_routes(runner, _routes.route_commands(_routes.read_routes(runner), route_plan.current))
        except Exception as undo_exc:  # reported with the first failure
            raise HostNetError(f"{exc}; putting back what this run changed failed too: {undo_exc}") from exc
        raise
