# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""The ESET PROTECT server host's multicast routes for Wake-on-LAN, at runtime and across reboots.

Runtime: `ip route replace GROUP dev IFACE proto 186`; the routing protocol number marks our routes, so only they are
read, changed and removed. Across reboots: one small shell hook, installed in each interface-hook directory the host
has (ifupdown, NetworkManager's dispatcher, networkd-dispatcher), that re-adds the routes when the interface comes up.
A hook is a file of its own in a directory meant for drop-ins, so no configuration of the host is edited."""
from __future__ import annotations

import json
import os
import typing as t

from .._firewall._base import file_change
from .._host._files import FileChange
from .._host._run import Runner

ROUTE_PROTO = 186           # our routes: `ip route ... proto 186`
HOOK_NAME = "protectnet-epns-wol-routes"  # no dot: run-parts (ifupdown) skips names with one
# directory of an interface-hook mechanism -> the file name in it (numbered where the mechanism orders by name)
HOOK_DIRS = {
    "/etc/network/if-up.d": HOOK_NAME,
    "/etc/NetworkManager/dispatcher.d": f"90-{HOOK_NAME}",
    "/etc/networkd-dispatcher/routable.d": f"90-{HOOK_NAME}",
}
HOOK_MODE = 0o755


class RouteError(Exception):
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


def check_interface(runner: Runner, name: str) -> None:
    rc, out, _err = runner.run(["ip", "-j", "link", "show"])
    try:
        names = [str(link.get("ifname")) for link in json.loads(out or "[]")] if rc == 0 else []
    except ValueError:
        names = []
    if names and name not in names:
        raise RouteError(f"interface {name!r} does not exist on this host (its interfaces: {', '.join(names)})")


def read_routes(runner: Runner) -> t.Dict[str, str]:
    """Our multicast routes: 'dst/len' -> device."""
    found: t.Dict[str, str] = {}
    for family, bits in (("-4", 32), ("-6", 128)):
        rc, out, err = runner.run(["ip", "-j", family, "route", "show", "proto", str(ROUTE_PROTO)])
        if rc != 0:
            raise RouteError(f"cannot read the routes (ip {family} route): {(err or out).strip()}")
        for route in json.loads(out or "[]"):
            dst = str(route.get("dst", ""))
            if dst and dst != "default":
                found[dst if "/" in dst else f"{dst}/{bits}"] = str(route.get("dev", ""))
    return found


def desired_routes(destinations: t.Sequence[t.Mapping[str, t.Any]], interface: str) -> t.Dict[str, str]:
    """A route per multicast group that leaves the link; link- and interface-local groups need none."""
    out: t.Dict[str, str] = {}
    for dest in destinations:
        if dest["kind"] in ("ipv4_multicast", "ipv6_multicast") and dest.get("scope") not in ("link", "interface"):
            out[dest["address"] + ("/32" if dest["family"] == "ipv4" else "/128")] = interface
    return out


def _route_argv(action: str, dst: str, dev: t.Optional[str] = None) -> t.List[str]:
    return ["ip", "-6" if ":" in dst else "-4", "route", action, dst, *(["dev", dev] if dev else []),
            "proto", str(ROUTE_PROTO)]


def route_commands(current: t.Mapping[str, str], desired: t.Mapping[str, str]) -> t.List[t.List[str]]:
    cmds = [_route_argv("del", dst) for dst in sorted(set(current) - set(desired))]
    cmds += [_route_argv("replace", dst, dev) for dst, dev in sorted(desired.items()) if current.get(dst) != dev]
    return cmds


def hook_script(desired: t.Mapping[str, str]) -> str:
    """The boot-time hook: re-adds the routes of one interface when it comes up. ifupdown and networkd-dispatcher
    name the interface in IFACE; NetworkManager passes it as $1 and the action as $2."""
    lines = ["#!/bin/sh",
             "# Managed by protectnet.epns.wol_multicast: multicast routes for Wake-on-LAN. Do not edit: re-run the",
             "# module (state=absent removes this file). Called by ifupdown, NetworkManager or networkd-dispatcher.",
             'iface="${IFACE:-$1}"',
             'case "${2:-up}" in up) ;; *) exit 0 ;; esac']
    for dev in sorted(set(desired.values())):
        lines.append(f'if [ "$iface" = "{dev}" ]; then')
        lines += [f"    {' '.join(_route_argv('replace', dst, dev))}"
                  for dst, route_dev in sorted(desired.items()) if route_dev == dev]
        lines.append("fi")
    lines.append("exit 0")
    return "\n".join(lines) + "\n"


def hook_files(desired: t.Mapping[str, str], persist: bool,
               exists: t.Callable[[str], bool] = os.path.isdir) -> t.Tuple[t.List[FileChange], t.List[str]]:
    """The hook in every interface-hook directory present (removed where no route is wanted or persist is off),
    and a warning when routes are wanted but the host has none of those directories."""
    content = hook_script(desired) if desired and persist else None
    present = [directory for directory in HOOK_DIRS if exists(directory)]
    changes = [file_change(f"{d}/{HOOK_DIRS[d]}", content, HOOK_MODE) for d in present]
    warnings = []
    if content is not None and not present:
        warnings.append("no interface hook directory found (" + ", ".join(HOOK_DIRS) + "): the multicast routes "
                        "are runtime only and come back with the next run of wol_multicast")
    return [c for c in changes if c.changed], warnings
