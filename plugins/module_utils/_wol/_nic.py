# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""Wake-on-LAN on a NIC: read it with ethtool, enable it at runtime (ethtool -s IF wol g) and persistently the way
the host configures its network: NetworkManager (802-3-ethernet.wake-on-lan) or a systemd .link file."""
from __future__ import annotations

import json
import os
import re
import typing as t

from .. import _result
from .._host._files import read_text, write_file
from .._host._run import Runner

LINK_DIR = "/etc/systemd/network"
SYS_NET = "/sys/class/net"
MODES = {"p": "phy", "u": "unicast", "m": "multicast", "b": "broadcast", "a": "arp", "g": "magic",
         "s": "secureon", "f": "filter", "d": "disabled"}


class NicError(Exception):
    pass


def check_interface(interface: str) -> None:
    if not os.path.isdir(os.path.join(SYS_NET, interface)) or "/" in interface:
        present = sorted(os.listdir(SYS_NET)) if os.path.isdir(SYS_NET) else []
        raise NicError(f"interface {interface!r} does not exist on this host (its interfaces: "
                       f"{', '.join(present) or 'none found'})")


def link_file(interface: str) -> str:
    return os.path.join(LINK_DIR, f"50-protectnet-wol-{interface}.link")


def read_ethtool(runner: Runner, interface: str) -> t.Dict[str, t.Any]:
    ethtool = runner.which("ethtool")
    if not ethtool:
        return {"supported": None, "reason": "ethtool is not installed, so Wake-on-LAN support cannot be read",
                "supports": "", "wake_on": ""}
    rc, out, err = runner.run([ethtool, interface])
    if rc != 0:
        return {"supported": None, "reason": f"ethtool {interface}: {(err or out).strip()}", "supports": "",
                "wake_on": ""}
    supports = re.search(r"^\s*Supports Wake-on:\s*(\S+)", out, re.M)
    wake_on = re.search(r"^\s*Wake-on:\s*(\S+)", out, re.M)
    if not supports or "g" not in supports.group(1):
        driver = ""
        rc2, out2, _e = runner.run([ethtool, "-i", interface])
        if rc2 == 0:
            found = re.search(r"^driver:\s*(\S+)", out2, re.M)
            driver = f" (driver {found.group(1)})" if found else ""
        return {"supported": False, "supports": supports.group(1) if supports else "",
                "wake_on": wake_on.group(1) if wake_on else "",
                "reason": f"{interface}{driver} does not support Wake-on-LAN by magic packet"
                          + (f" (supports: {supports.group(1)})" if supports else " (no 'Supports Wake-on' line)")}
    return {"supported": True, "supports": supports.group(1), "wake_on": wake_on.group(1) if wake_on else "d",
            "reason": ""}


def nm_connection(runner: Runner, interface: str) -> t.Optional[str]:
    nmcli = runner.which("nmcli")
    if not nmcli:
        return None
    rc, out, _err = runner.run([nmcli, "-t", "-f", "DEVICE,STATE,CONNECTION", "device"])
    if rc != 0:
        return None
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and parts[0] == interface and parts[2] and "unmanaged" not in parts[1]:
            return parts[2]
    return None


def networkd_manages(runner: Runner, interface: str) -> bool:
    return os.path.isdir("/run/systemd/netif/links") and bool(runner.which("networkctl")) and \
        runner.run(["networkctl", "status", interface])[0] == 0


def mac_of(interface: str) -> str:
    return (read_text(os.path.join(SYS_NET, interface, "address")) or "").strip()


def addresses_of(runner: Runner, interface: str) -> t.List[str]:
    rc, out, _err = runner.run(["ip", "-j", "addr", "show", "dev", interface])
    if rc != 0:
        return []
    try:
        links = json.loads(out or "[]")
    except ValueError:
        return []
    return [f"{a['local']}/{a['prefixlen']}" for link in links for a in link.get("addr_info", [])
            if a.get("scope") == "global"]


def _persistence(runner: Runner, interface: str, method: str, enabling: bool) -> t.Dict[str, t.Any]:
    """Whether the method already keeps Wake-on-LAN across a reboot: {persistent[, connection]}."""
    if method == "networkmanager":
        conn = nm_connection(runner, interface)
        if not conn and enabling:
            raise NicError(f"method networkmanager: NetworkManager has no active connection on {interface} (nmcli "
                           "device); use method auto, systemd_link or ethtool")
        if conn:
            rc, value, _e = runner.run(["nmcli", "-g", "802-3-ethernet.wake-on-lan", "connection", "show", conn])
            return {"persistent": rc == 0 and "magic" in value, "connection": conn}
    elif method == "systemd_link":
        text = read_text(link_file(interface)) or ""
        return {"persistent": "WakeOnLan=magic" in text}
    return {}


def run(runner: Runner, interface: str, enable: bool, method: str, check_mode: bool) -> t.Dict[str, t.Any]:
    eth = read_ethtool(runner, interface)
    out: t.Dict[str, t.Any] = {"interface": interface, "mac": mac_of(interface), "supported": eth["supported"],
                               "addresses": addresses_of(runner, interface),
                               "supports": eth["supports"], "wake_on": eth["wake_on"],
                               "wake_on_modes": [MODES.get(c, c) for c in eth["wake_on"]],
                               "enabled": "g" in eth["wake_on"], "method": None, "persistent": None,
                               "changed": False, "reason": eth["reason"], "commands": [], "files": []}
    if method == "auto":
        conn = nm_connection(runner, interface)
        method = "networkmanager" if conn else "systemd_link" if networkd_manages(runner, interface) else "ethtool"
    out["method"] = method
    out.update(_persistence(runner, interface, method, enable and eth["supported"] is True))
    out["before"] = {"wake_on": eth["wake_on"], "persistent": out["persistent"]}
    if method == "ethtool" and eth["supported"] is True and (enable or out["enabled"]):
        out["warnings"] = [f"Wake-on-LAN on {interface} is set with ethtool only and is lost at the next reboot: "
                           "neither NetworkManager nor systemd-networkd manages it (method networkmanager or "
                           "systemd_link makes it persistent)"]
    if not enable or eth["supported"] is not True:
        out["after"] = dict(out["before"])
        return out
    cmds: t.List[t.List[str]] = []
    if not out["enabled"]:
        cmds.append(["ethtool", "-s", interface, "wol", "g"])
    link_text: t.Optional[str] = None
    if method == "networkmanager" and not out["persistent"] and out.get("connection"):
        cmds.append(["nmcli", "connection", "modify", out["connection"], "802-3-ethernet.wake-on-lan", "magic"])
    elif method == "systemd_link" and not out["persistent"]:
        if not out["mac"]:
            raise NicError(f"method systemd_link: the MAC address of {interface} cannot be read, and the .link file "
                           "matches the NIC by it")
        link_text = ("# Managed by protectnet.epns.wol_nic\n[Match]\n" + f"MACAddress={out['mac']}\n"
                     + "\n[Link]\nWakeOnLan=magic\n")
        path = link_file(interface)
        out["files"].append(_result.file_entry(path, "updated" if os.path.exists(path) else "created"))
    out["commands"] += [_result.command(c) for c in cmds]
    if cmds or link_text is not None:
        out["changed"] = True
        if not check_mode:
            for cmd in cmds:
                rc, o, e = runner.run(cmd)
                if rc != 0:
                    raise NicError(f"{' '.join(cmd)} failed: {(e or o).strip()}")
            if link_text is not None:
                write_file(link_file(interface), link_text)
            after = read_ethtool(runner, interface)
            out.update(wake_on=after["wake_on"], enabled="g" in after["wake_on"],
                       wake_on_modes=[MODES.get(c, c) for c in after["wake_on"]])
            if method != "ethtool":
                out["persistent"] = True
        else:
            out.update(enabled=True, persistent=True if method != "ethtool" else out["persistent"])
    # `ethtool -s IFACE wol g` leaves exactly "g": what check mode predicts
    out["after"] = {"wake_on": "g" if check_mode and cmds and cmds[0][:2] == ["ethtool", "-s"] else out["wake_on"],
                    "persistent": out["persistent"]}
    return out


def describe(interface: str, state: t.Mapping[str, t.Any], method: t.Optional[str]) -> str:
    """One line for --diff: the Wake-on letters and where the setting is kept."""
    where = {True: f"persistent ({method})", False: "not persistent", None: "runtime only"}[state.get("persistent")]
    return f"{interface} wake-on: {state.get('wake_on') or '(unknown)'}, {where}\n"
