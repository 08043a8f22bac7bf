# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""The ESET PROTECT server host's own network for Wake-on-LAN: a multicast route per group on the chosen interface,
and UDP egress to every destination (with the multicast TTL rewritten) through the shared firewall backends.

Routes carry the routing protocol number ROUTE_PROTO, so only our own routes are read, changed and removed. The
firewall objects carry the tag FIREWALL_TAG (table inet protectnet_wol in nftables, chain PROTECTNET_WOL and
ipsets protectnet_wol_* in iptables), apart from epns_firewall's. The TTL rewrite is nftables only."""
from __future__ import annotations

import json
import typing as t

from .._firewall._base import Runner, Settings, write_file
from .._firewall._engine import make_backend, select_backend
from .._firewall._model import FirewallError, Group, Policy, State

ROUTE_PROTO = 186           # our routes: `ip route ... proto 186`
FIREWALL_TAG = "protectnet_wol"
GROUP = "wol"
WOL_BACKENDS = ("nftables", "iptables")  # firewalld, ufw: not parametrised by tag yet


class HostNetError(Exception):
    pass


def default_interface(runner: Runner) -> t.Optional[str]:
    for family in ("-4", "-6"):
        rc, out, _err = runner.run(["ip", "-j", family, "route", "show", "default"])
        if rc == 0:
            try:
                routes = json.loads(out or "[]")
            except ValueError:
                continue
            for route in routes:
                if route.get("dev"):
                    return str(route["dev"])
    return None


def read_routes(runner: Runner) -> t.Dict[str, str]:
    """Our multicast routes: 'dst/len' -> device."""
    found: t.Dict[str, str] = {}
    for family, bits in (("-4", 32), ("-6", 128)):
        rc, out, err = runner.run(["ip", "-j", family, "route", "show", "proto", str(ROUTE_PROTO)])
        if rc != 0:
            raise HostNetError(f"cannot read the routes (ip {family} route): {(err or out).strip()}")
        for route in json.loads(out or "[]"):
            dst = str(route.get("dst", ""))
            if dst and dst != "default":
                found[dst if "/" in dst else f"{dst}/{bits}"] = str(route.get("dev", ""))
    return found


def desired_routes(destinations: t.Sequence[t.Mapping[str, t.Any]], interface: str) -> t.Dict[str, str]:
    out: t.Dict[str, str] = {}
    for dest in destinations:
        if dest["kind"] in ("ipv4_multicast", "ipv6_multicast") and dest.get("scope") not in ("link", "interface"):
            out[dest["address"] + ("/32" if dest["family"] == "ipv4" else "/128")] = interface
    return out


def route_commands(current: t.Mapping[str, str], desired: t.Mapping[str, str]) -> t.List[t.List[str]]:
    cmds: t.List[t.List[str]] = []
    for dst in sorted(set(current) - set(desired)):
        cmds.append(["ip", "-6" if ":" in dst else "-4", "route", "del", dst, "proto", str(ROUTE_PROTO)])
    for dst, dev in sorted(desired.items()):
        if current.get(dst) != dev:
            cmds.append(["ip", "-6" if ":" in dst else "-4", "route", "replace", dst, "dev", dev,
                         "proto", str(ROUTE_PROTO)])
    return cmds


def wol_policy(destinations: t.Sequence[t.Mapping[str, t.Any]], port: int, ttl: t.Optional[int]) -> Policy:
    v4 = tuple(sorted({d["address"] + "/32" for d in destinations if d["family"] == "ipv4"}))
    v6 = tuple(sorted({d["address"] + "/128" for d in destinations if d["family"] == "ipv6"}))
    return Policy((Group(GROUP, (port,), v4, v6, "udp", ttl),))


def firewall_backend(wanted: str, runner: Runner, persist: bool) -> t.Tuple[t.Any, str]:
    settings = Settings(persist=persist, options={"tag": FIREWALL_TAG})
    if wanted != "auto":
        if wanted not in WOL_BACKENDS:
            raise FirewallError(f"firewall_backend {wanted}: Wake-on-LAN egress is implemented for "
                                f"{', '.join(WOL_BACKENDS)} only (not yet for firewalld, ufw)")
        backend = make_backend(wanted, runner, settings)
        backend.require_usable()
        return backend, f"{wanted} (as requested)"
    backend, reason, _found = select_backend("auto", runner, settings)
    if backend.name not in WOL_BACKENDS:
        raise FirewallError(f"firewall_backend auto chose {backend.name} ({reason}), but Wake-on-LAN egress is "
                            f"implemented for {', '.join(WOL_BACKENDS)} only: set firewall: false and open UDP "
                            "to the destinations yourself, or choose a backend")
    return backend, reason


def apply(runner: Runner, destinations: t.Sequence[t.Mapping[str, t.Any]], port: int, *, state: str,
          interface: t.Optional[str], ttl: t.Optional[int], routes: bool, firewall: bool, backend_name: str,
          persist: bool, check_mode: bool) -> t.Dict[str, t.Any]:
    """One run for the host network. Returns {changed, routes: {...}, firewall: {...}, diff: {before, after}}."""
    out: t.Dict[str, t.Any] = {"changed": False, "interface": None, "routes": {}, "firewall": {}, "warnings": []}
    before_lines: t.List[str] = []
    after_lines: t.List[str] = []
    if routes:
        current = read_routes(runner)
        want: t.Dict[str, str] = {}
        if state == "present":
            iface = interface or default_interface(runner)
            if not iface:
                raise HostNetError("no interface given and the host has no default route: set 'interface'")
            out["interface"] = iface
            want = desired_routes(destinations, iface)
        cmds = route_commands(current, want)
        out["routes"] = {"before": current, "after": want, "commands": [" ".join(c) for c in cmds]}
        before_lines += [f"route {d} dev {v} proto {ROUTE_PROTO}" for d, v in sorted(current.items())]
        after_lines += [f"route {d} dev {v} proto {ROUTE_PROTO}" for d, v in sorted(want.items())]
        if cmds:
            out["changed"] = True
            if not check_mode:
                for cmd in cmds:
                    rc, o, e = runner.run(cmd)
                    if rc != 0:
                        raise HostNetError(f"{' '.join(cmd)} failed: {(e or o).strip()}")
    if firewall:
        backend, reason = firewall_backend(backend_name, runner, persist)
        current_fw = backend.read_current()
        desired_fw = backend.compute_desired(wol_policy(destinations, port, ttl), current_fw) \
            if state == "present" else State()
        change = backend.diff(current_fw, desired_fw)
        files = backend.persist(desired_fw)
        out["firewall"] = {"backend": backend.name, "backend_reason": reason, "changes": change.as_dict(),
                           "files": [{"path": f.path, "action": "removed" if f.content is None else "written"}
                                     for f in files]}
        before_lines += current_fw.render().splitlines()
        after_lines += desired_fw.render().splitlines()
        if change.changed or files:
            out["changed"] = True
            if not check_mode:
                if change.changed:
                    backend.apply(backend.plan(current_fw, desired_fw))
                for f in files:
                    write_file({"path": f.path, "content": f.content, "mode": f.mode})
        out["warnings"] += backend.warnings
    out["diff"] = {"before": "\n".join(before_lines) + ("\n" if before_lines else ""),
                   "after": "\n".join(after_lines) + ("\n" if after_lines else "")}
    return out
