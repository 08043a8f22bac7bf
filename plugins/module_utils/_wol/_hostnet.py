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

from .._firewall._base import Settings
from .._firewall._engine import select_backend
from .._firewall._model import FirewallError, Group, Policy, State
from .._firewall._nftables import NftablesBackend
from .._host._files import FileChange
from .._host._run import Runner
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
    settings = Settings(persist=persist, options={"tag": FIREWALL_TAG})
    backend, reason, _found = select_backend(wanted, runner, settings)
    return backend, reason


class _Part:
    """One firewall owner's read -> desired -> diff -> files, and the run that applies them."""

    def __init__(self, backend: t.Any, desired_policy: t.Optional[Policy], after: t.Sequence[_Part] = ()) -> None:
        """after: the parts applied before this one; a file they write (the nftables service configuration, where
        the filter and the TTL table each keep an include block) is edited from their result."""
        self.backend = backend
        self.current: State = backend.read_current()
        self.desired: State = (backend.compute_desired(desired_policy, self.current)
                               if desired_policy is not None else State())
        self.change = backend.diff(self.current, self.desired)
        planned = {f.path: f.content for part in after for f in part.files}
        self.files: t.List[FileChange] = backend.persist(self.desired, planned)

    @property
    def changed(self) -> bool:
        return bool(self.change.changed or self.files)

    def summary(self) -> t.Dict[str, t.Any]:
        return {"changes": self.change.as_dict(),
                "files": [{"path": f.path, "action": "removed" if f.content is None else "written"}
                          for f in self.files]}

    def apply(self) -> None:
        """All or nothing: the backend's own apply rolls its steps back; a file that cannot be written puts the
        runtime and the files already written back."""
        if self.change.changed:
            self.backend.apply(self.backend.plan(self.current, self.desired))
        try:
            for change in self.files:
                change.write()
        except Exception:
            self.undo()
            raise

    def undo(self) -> None:
        """Back to what was read (after apply() succeeded and a later part failed)."""
        if self.change.changed:
            self.backend.apply(self.backend.plan(self.desired, self.current))
        for change in self.files:
            change.restore()


def _ttl_part(runner: Runner, filter_backend: str, destinations: t.Sequence[t.Mapping[str, t.Any]], port: int,
              ttl: t.Optional[int], state: str, persist: bool) -> t.Tuple[t.Optional[_Part], t.Dict[str, t.Any]]:
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
    ttl_backend = NftablesBackend(runner, Settings(persist=persist, options={"tag": TTL_TAG, "ttl_only": True}))
    part = _Part(ttl_backend, wol_policy(destinations, port, ttl, MULTICAST) if wanted else None)
    info.update(part.summary())
    return part, info


def apply(runner: Runner, destinations: t.Sequence[t.Mapping[str, t.Any]], port: int, *, state: str,
          interface: t.Optional[str], ttl: t.Optional[int], routes: bool, firewall: bool, backend_name: str,
          persist: bool, check_mode: bool) -> t.Dict[str, t.Any]:
    """One run for the host network. Returns {changed, interface, routes, firewall, warnings, diff}. Everything is
    read and computed before anything changes; a failure part-way puts the firewall parts already applied back."""
    out: t.Dict[str, t.Any] = {"changed": False, "interface": None, "routes": {}, "firewall": {}, "warnings": []}
    before_lines: t.List[str] = []
    after_lines: t.List[str] = []
    route_cmds: t.List[t.List[str]] = []
    hook_files: t.List[FileChange] = []
    parts: t.List[_Part] = []
    try:
        if routes:
            current = _routes.read_routes(runner)
            want: t.Dict[str, str] = {}
            if state == "present":
                iface = interface or _routes.default_interface(runner)
                if not iface:
                    raise HostNetError("no interface given and the host has no default route: set 'interface'")
                _routes.check_interface(runner, iface)
                out["interface"] = iface
                want = _routes.desired_routes(destinations, iface)
            route_cmds = _routes.route_commands(current, want)
            hook_files, warnings = _routes.hook_files(want, persist)
            out["warnings"] += warnings
            out["routes"] = {"before": current, "after": want, "commands": [" ".join(c) for c in route_cmds],
                             "files": [{"path": f.path, "action": "removed" if f.content is None else "written"}
                                       for f in hook_files]}
            before_lines += [f"route {d} dev {v} proto {ROUTE_PROTO}" for d, v in sorted(current.items())]
            after_lines += [f"route {d} dev {v} proto {ROUTE_PROTO}" for d, v in sorted(want.items())]
            before_lines += [f"file {f.path}" for f in hook_files if f.before is not None]
            after_lines += [f"file {f.path}" for f in hook_files if f.content is not None]
        if firewall:
            backend, reason = firewall_backend(backend_name, runner, persist)
            # the TTL first: rewriting the TTL of packets the firewall still drops harms nothing
            ttl_part, ttl_info = _ttl_part(runner, backend.name, destinations, port, ttl, state, persist)
            main = _Part(backend, wol_policy(destinations, port, ttl if backend.name == "nftables" else None)
                         if state == "present" else None, after=[ttl_part] if ttl_part else [])
            out["firewall"] = {"backend": backend.name, "backend_reason": reason, **main.summary(),
                               "multicast_ttl": ttl_info}
            parts = [p for p in (ttl_part, main) if p is not None]
            for part in parts:
                before_lines += part.current.render().splitlines()
                after_lines += part.desired.render().splitlines()
    except RouteError as exc:
        raise HostNetError(str(exc)) from exc
    out["changed"] = bool(route_cmds or hook_files or any(p.changed for p in parts))
    if not check_mode and out["changed"]:
        _apply(runner, parts, out["routes"].get("before", {}), route_cmds, hook_files)
    for part in parts:
        out["warnings"] += part.backend.warnings
    out["diff"] = {"before": "\n".join(before_lines) + ("\n" if before_lines else ""),
                   "after": "\n".join(after_lines) + ("\n" if after_lines else "")}
    return out


def _run_routes(runner: Runner, cmds: t.Sequence[t.Sequence[str]]) -> None:
    for cmd in cmds:
        rc, o, e = runner.run(cmd)
        if rc != 0:
            raise HostNetError(f"{' '.join(cmd)} failed: {(e or o).strip()}")


def _apply(runner: Runner, parts: t.Sequence[_Part], routes_before: t.Mapping[str, str],
           route_cmds: t.Sequence[t.Sequence[str]], hook_files: t.Sequence[FileChange]) -> None:
    """Routes, firewall parts, then boot hooks; on a failure everything already done is put back, newest first."""
    undo: t.List[t.Callable[[], None]] = []

    def routes_back() -> None:
        _run_routes(runner, _routes.route_commands(_routes.read_routes(runner), routes_before))

    def file_back(change: FileChange) -> t.Callable[[], None]:
        return change.restore

    try:
        if route_cmds:
            undo.append(routes_back)
            _run_routes(runner, route_cmds)
        for part in parts:
            if part.changed:
                part.apply()
                undo.append(part.undo)
        for change in hook_files:
            undo.append(file_back(change))
            change.write()
    except Exception as exc:
        failed: t.List[str] = []
        for step in reversed(undo):
            try:
                step()
            except Exception as undo_exc:  # reported with the first failure below
                failed.append(str(undo_exc))
        if failed:
            raise HostNetError(f"{exc}; putting back what this run changed failed too: {'; '.join(failed)}") from exc
        raise
