#!/usr/bin/python
# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: wol_multicast
short_description: Set and check where the ESET PROTECT Server sends Wake-on-LAN magic packets
version_added: 0.1.0
description:
  - The ESET PROTECT Server sends Wake-on-LAN calls itself, to the multicast addresses set in its server settings
    (web console, More > Settings). This module validates and normalises those destinations, applies them to the
    server where its API allows it, and prepares the server host's own network to send them.
  - "Destinations: IPv4 multicast groups, IPv6 multicast groups and IPv4 subnet-directed broadcasts, given directly
    (a broadcast as V(ADDRESS/PREFIX), for example V(10.1.2.255/24)) or computed from O(subnets) on the controller
    (V(10.1.2.0/24) gives V(10.1.2.255)). Unicast, loopback, the unspecified address and the limited broadcast
    V(255.255.255.255) are refused, with the reason they will not cross a router, unless O(allow) names them.
    Link-local multicast (V(224.0.0.0/24), V(ff02::/16)) is kept with a warning: it stays on one link. Duplicates are
    removed; the normalised list is returned."
  - "Server settings (O(server_settings)): the current value is read with C(POST /v2/configuration:batchGetValues)
    (ESET PROTECT On-Prem 13.1+). B(No public API call that writes server settings is known), and the path of the
    Wake-on-LAN setting is not documented: both live in one data file of the collection
    (C(plugins/module_utils/_wol/_settings_map.py)) and can be overridden with O(settings_map). Without a write call
    the module returns RV(action_required) with the exact values and where to enter them, C(changed=false), and fails
    only with O(require_applied=true). Once a server offers a write call, naming it in the map makes the module
    write and read back. A read answered 400, 404, 405 or 501 (the setting path is unconfirmed) is not a failure:
    RV(action_required) quotes the server's answer. A 403 fails with the name of the permission the API user lacks."
  - "The module is in the C(epns) action group: C(module_defaults) for C(group/protectnet.epns.epns) give it the
    API connection options. The calls belong to the C(configuration) service of O(api_urls)."
  - "Host network (O(host_network), on the ESET PROTECT server host): a route for each multicast group on
    O(interface) (routing protocol 186, so only these routes are managed), re-added at boot by a hook in each
    interface-hook directory the host has (ifupdown C(/etc/network/if-up.d), NetworkManager
    C(/etc/NetworkManager/dispatcher.d), networkd-dispatcher C(/etc/networkd-dispatcher/routable.d)); and, with
    O(firewall), UDP egress to every destination on O(wol_port) through the same firewall backends as
    M(protectnet.epns.epns_firewall), in objects of their own tagged C(protectnet_wol): nftables table
    C(inet protectnet_wol) and hooks in the host's default-deny chains; iptables chain C(PROTECTNET_WOL), jumped to
    first from C(OUTPUT), and ipsets C(protectnet_wol_wol_v4)/C(_v6); firewalld policy C(protectnet_wol) (or, in
    direct mode, direct chain C(PROTECTNET_WOL)) and ipsets C(protectnet_wol_wol_v4)/C(_v6); ufw rules commented
    C(protectnet_wol wol ipv4 udp 9)."
  - "Multicast TTL: the firewall rewrites the TTL (IPv6 hop limit) of packets to the multicast groups to
    O(multicast_ttl). With nftables the rule of table C(inet protectnet_wol) does it; iptables, firewalld and ufw
    cannot, so beside them a small nftables table C(inet protectnet_wolttl) rewrites the TTL and filters nothing
    (it needs the C(nft) command)."
  - Not confirmed against a real ESET PROTECT server; tested against the collection's API emulator and lab.
author:
  - protectnet.epns contributors (@protectnet)
extends_documentation_fragment:
  - protectnet.epns.eset_api
  - protectnet.epns._attributes
  - protectnet.epns._result
attributes:
  check_mode:
    support: full
    details:
      - Check mode reads the server setting, the routes and the firewall, and changes none of them.
  diff_mode:
    support: full
    details:
      - The diff shows the server setting, the managed routes and the managed firewall objects.
options:
  destinations:
    description:
      - Multicast groups (IPv4 or IPv6) and subnet-directed broadcasts written as V(ADDRESS/PREFIX).
      - A plain IPv4 address that is not multicast counts as unicast, even if it ends in C(.255); give its prefix.
    type: list
    elements: str
    default: []
  subnets:
    description:
      - IPv4 agent subnets (V(10.1.2.0/24)) or agent interface addresses (V(10.1.2.7/24)); each adds the subnet's
        directed broadcast, computed on the controller (the action plugin hands the module
        V(BROADCAST/PREFIX), which the module checks again, with the same code).
    type: list
    elements: str
    default: []
  wol_port:
    description:
      - UDP port of the magic packets (9, discard, is the usual one; 7, echo, is the other).
      - Not called C(port), which is the API port of the C(eset_api) options.
    type: int
    choices: [7, 9]
    default: 9
  allow:
    description:
      - Kinds of destination to accept although they do not cross a router. V(unicast) makes sense with a static
        ARP/neighbour entry for the sleeping machine on the last router.
    type: list
    elements: str
    choices: [unicast, loopback, unspecified, limited_broadcast]
    default: []
  state:
    description:
      - V(present) sets the destinations; V(absent) removes this module's routes and firewall objects from the host
        (the server setting is left as it is).
    type: str
    choices: [present, absent]
    default: present
  server_settings:
    description:
      - Read (and, where a write call is known, write) the server's Wake-on-LAN setting through its API.
      - With V(false), RV(action_required) still lists the values to enter in the console (the setting is not checked).
    type: bool
    default: true
  settings_map:
    description:
      - Overrides for the data file that says where the setting lives. Keys C(service), C(read_path),
        C(addresses_path), C(write_path) (null = no write call), C(console_location), and C(confirmed) (what
        RV(map_confirmed) reports; V(true) once the path is checked against your server).
    type: dict
  settings_map_file:
    description:
      - A JSON or YAML file on the host that runs the module with the same content as O(settings_map), or the
        overrides file the playbook C(protectnet.epns.calibrate) writes (its C(wake_on_lan) section is taken).
        O(settings_map) is merged over the file.
    type: path
  require_applied:
    description:
      - Fail when the server setting could not be applied (no write call) instead of returning RV(action_required).
    type: bool
    default: false
  host_network:
    description: Manage the host's multicast routes and, with O(firewall), its UDP egress.
    type: bool
    default: true
  interface:
    description: The interface for the multicast routes. Default is the interface of the default route.
    type: str
  multicast_ttl:
    description:
      - TTL (IPv6 hop limit) written into outgoing packets to the multicast groups (with O(firewall=true)). Linux
        sends multicast with TTL 1 when the program does not set one, which never crosses a router; what the ESET
        PROTECT Server sets is not documented. V(0) leaves the TTL alone.
      - With the nftables backend the rule of table C(inet protectnet_wol) rewrites it (for every destination);
        with iptables, firewalld and ufw a table C(inet protectnet_wolttl) of its own does, for the multicast groups
        only. Without the C(nft) command that fails, naming the way out (install nftables, or V(0)).
    type: int
    default: 16
  firewall:
    description: Open UDP egress to the destinations in the host firewall.
    type: bool
    default: true
  firewall_backend:
    description:
      - The firewall backend, as in M(protectnet.epns.epns_firewall) (V(auto) picks the host's firewall the same
        way). The objects are apart from M(protectnet.epns.epns_firewall)'s, so both modules can manage one host.
      - A run manages the chosen backend only (and the TTL table beside it). To move the host to another backend,
        run O(state=absent) with the old one first; otherwise its objects stay.
    type: str
    choices: [auto, nftables, iptables, firewalld, ufw]
    default: auto
  persist:
    description:
      - Make the firewall objects survive a reboot the distribution's way, and install the boot hooks that re-add
        the routes. V(false) removes the hooks and the persisted firewall objects. ufw has no runtime-only rules, so
        V(false) with O(firewall_backend=ufw) (or C(auto) choosing ufw) and O(state=present) fails without changes.
    type: bool
    default: true
  username:
    description:
      - The API user (see the C(eset_api) options). Required when O(server_settings=true).
      - Falls back to E(ESET_PROTECT_USERNAME).
    type: str
    required: false
  password:
    description:
      - The API user's password. Required when O(server_settings=true). Never shown.
      - Falls back to E(ESET_PROTECT_PASSWORD).
    type: str
    required: false
notes:
  - Runs on the ESET PROTECT server host, which also sends the magic packets. Give it only the API connection
    options through C(group/protectnet.epns.epns) defaults; O(state), O(destinations), O(persist) and
    O(settings_map) mean other things in other modules of the group (see the docs).
seealso:
  - module: protectnet.epns.wol_probe
  - module: protectnet.epns.wol_nic
  - module: protectnet.epns.epns_firewall
  - name: Wake-on-LAN in this collection
    description: docs/wake-on-lan.md
    link: https://github.com/protectnet/epns/blob/main/docs/wake-on-lan.md
"""

EXAMPLES = r"""
- name: Wake-on-LAN to a site-local group and the agent subnets
  protectnet.epns.wol_multicast:
    server: localhost
    ca_path: /etc/eset/ca.pem
    destinations: [239.255.0.9, "ff05::9"]
    subnets: [10.1.2.0/24, 10.1.3.0/24]
  register: wol

- name: Tell the administrator what to enter when the server cannot be written
  ansible.builtin.debug:
    msg: "{{ wol.action_required.message }}"
  when: wol.action_required is not none

- name: Validate only (no API, no host changes)
  protectnet.epns.wol_multicast:
    destinations: [239.255.0.9]
    server_settings: false
    host_network: false
"""

RETURN = r"""
destinations:
  description: The normalised destinations, duplicates removed, in the order given (destinations, then subnets).
  returned: always
  type: list
  elements: dict
  sample: [{address: 239.255.0.9, kind: ipv4_multicast, family: ipv4, subnet: null, scope: site, port: 9,
            source: destinations}, {address: 10.1.2.255, kind: directed_broadcast, family: ipv4,
            subnet: 10.1.2.0/24, scope: routed, port: 9, source: subnets}]
values:
  description: The addresses the server setting should hold.
  returned: always
  type: list
  elements: str
  sample: [239.255.0.9, 10.1.2.255]
duplicates_removed:
  description: Addresses given more than once.
  returned: always
  type: list
  elements: str
applied:
  description: The server setting holds RV(values) (or, in check mode, would after the write).
  returned: always
  type: bool
action_required:
  description:
    - Null, or what a person must do because the server offers no write call, or because O(server_settings=false)
      (C(reason), C(where), C(values), C(text) one address a line, C(setting), C(current), C(message)).
  returned: always
  type: dict
server:
  description:
    - The server half (C(setting), C(wanted), C(current), C(read), C(in_sync), C(applied), C(changed),
      C(write_call)), and C(read_error) (C(status), C(body), C(request_id), ...) when the server refused the read.
  returned: when O(server_settings=true)
  type: dict
host_network:
  description: C(interface), C(routes) (C(before), C(after), C(commands)), C(firewall) (C(backend), C(backend_reason),
    C(changes), C(files), C(commands), C(multicast_ttl) (C(ttl), C(by), and for a TTL table its C(changes),
    C(files) and C(commands))); the routes also list the boot hook C(files). Commands and files have the shapes of
    the common C(commands) and C(files) keys, which list them all.
  returned: when O(host_network=true)
  type: dict
before:
  description:
    - What the module owns before the run - C(host_network) (C(routes), destination to interface; C(firewall) and,
      for a TTL table, C(multicast_ttl) - the owned objects, C(containers), C(sets) and C(rules)) and
      C(server_setting) (the addresses the server setting held). Each C(null) when not managed or not read.
  returned: always
  type: dict
  sample: {host_network: {routes: {239.255.0.9/32: eth0}, firewall: {containers: {}, sets: {}, rules: {}}},
           server_setting: [239.255.0.9]}
after:
  description: The same after the run (as it would be, in check mode).
  returned: always
  type: dict
api:
  description: Request counters of the API client.
  returned: when O(server_settings=true)
  type: dict
map_confirmed:
  description: Whether the settings map in use is confirmed against a real server (false for the built-in one).
  returned: always
  type: bool
"""

import re  # noqa: E402
import typing as t  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._python_floor import require_supported_python  # noqa: E402

require_supported_python()  # first: the imports below need Python 3.8 and would fail on 3.6 without saying why
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._argspec import eset_api_argument_spec  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._errors import EsetApiError  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._module import api_summary, client_from_module  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._eset_policy._settings_map import load_settings_file  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._firewall._model import FirewallError  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._host._run import CommandError, ModuleRunner  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._result import change_result, exit_changed  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._wol import _hostnet, _server, _settings_map  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._wol._validate import (  # noqa: E402
    ALLOWABLE,
    DestinationError,
    validate,
    values,
)

_INTERFACE_RE = re.compile(r"^[^/\s:]{1,15}$")


def argument_spec() -> t.Dict[str, t.Any]:
    spec = eset_api_argument_spec()
    for key in ("username", "password"):
        spec[key] = dict(spec[key], required=False)
    spec.update(
        destinations={"type": "list", "elements": "str", "default": []},
        subnets={"type": "list", "elements": "str", "default": []},
        wol_port={"type": "int", "choices": [7, 9], "default": 9},
        allow={"type": "list", "elements": "str", "choices": list(ALLOWABLE), "default": []},
        state={"type": "str", "choices": ["present", "absent"], "default": "present"},
        server_settings={"type": "bool", "default": True},
        settings_map={"type": "dict"},
        settings_map_file={"type": "path"},
        require_applied={"type": "bool", "default": False},
        host_network={"type": "bool", "default": True},
        interface={"type": "str"},
        multicast_ttl={"type": "int", "default": 16},
        firewall={"type": "bool", "default": True},
        firewall_backend={"type": "str", "choices": ["auto", "nftables", "iptables", "firewalld", "ufw"],
                          "default": "auto"},
        persist={"type": "bool", "default": True},
    )
    return spec


def checked_destinations(module: AnsibleModule, result: t.Dict[str, t.Any]) -> t.Any:
    """Validate every option before anything is read or sent; fill the destination keys of the result."""
    p = module.params
    if not 0 <= p["multicast_ttl"] <= 255:
        module.fail_json(msg=f"multicast_ttl {p['multicast_ttl']}: expected 0 (leave the TTL alone) to 255")
    try:
        checked = validate(p["destinations"], p["subnets"], p["allow"])
    except DestinationError as exc:
        module.fail_json(msg=f"Wake-on-LAN destinations refused: {exc}", **result)
        raise  # unreachable
    for warning in checked.warnings:
        module.warn(warning)
    result.update(destinations=[d.as_dict(p["wol_port"]) for d in checked.destinations],
                  values=values(checked.destinations), duplicates_removed=checked.duplicates)
    try:
        override = load_settings_file(p["settings_map_file"], "wake_on_lan") if p["settings_map_file"] else {}
        override.update(p["settings_map"] or {})
        settings_map = _settings_map.merged(override)
    except ValueError as exc:  # MapError too
        module.fail_json(msg=str(exc), **result)
        raise
    result["map_confirmed"] = settings_map["confirmed"]
    if p["interface"] is not None and not _INTERFACE_RE.match(p["interface"]):
        module.fail_json(msg=f"interface {p['interface']!r} is not an interface name (1-15 characters, no '/', "
                         "blanks or ':')", **result)
    return settings_map


def host_network(module: AnsibleModule, result: t.Dict[str, t.Any], diff: t.Dict[str, t.List[str]],
                 shape: t.Dict[str, t.Any]) -> None:
    """Routes and firewall on this host; their commands, files and owned objects go into the common keys."""
    p = module.params
    try:
        net = _hostnet.apply(ModuleRunner(module), result["destinations"], p["wol_port"], state=p["state"],
                             interface=p["interface"], ttl=p["multicast_ttl"] or None, routes=True,
                             firewall=p["firewall"], backend_name=p["firewall_backend"], persist=p["persist"],
                             check_mode=module.check_mode)
    except (FirewallError, CommandError, _hostnet.HostNetError) as exc:
        module.fail_json(msg=f"host network: {exc}", **result)
        raise
    for warning in net.pop("warnings"):
        module.warn(warning)
    net_diff = net.pop("diff")
    diff["before"].append(net_diff["before"])
    diff["after"].append(net_diff["after"])
    shape["before"]["host_network"], shape["after"]["host_network"] = net.pop("before"), net.pop("after")
    firewall = net["firewall"]
    for part in (net["routes"], firewall.get("multicast_ttl", {}), firewall):
        shape["commands"] += part.get("commands", [])
        shape["files"] += part.get("files", [])
    result["host_network"] = net
    result["changed"] = bool(net["changed"])


def _setting_line(setting: str, shown: t.Optional[t.Sequence[str]], note: str = "") -> str:
    return f"server setting {setting}: " + (", ".join(shown) if shown is not None else "(unknown)") + note + "\n"


def server_setting(module: AnsibleModule, settings_map: t.Any, result: t.Dict[str, t.Any],
                   diff: t.Dict[str, t.List[str]], shape: t.Dict[str, t.Any]) -> None:
    """The ESET PROTECT server's Wake-on-LAN setting, written through the API where the server allows it."""
    wanted = result["values"]
    client = client_from_module(module)
    try:
        server = _server.apply(client, settings_map, wanted, module.check_mode)
    except _server.PermissionMissing as exc:
        result["action_required"] = exc.action_required
        module.fail_json(msg=f"ESET PROTECT API: {exc}", error=exc.to_dict(), api=api_summary(client), **result)
        raise
    except EsetApiError as exc:
        module.fail_json(msg=f"ESET PROTECT API: {exc}", error=exc.to_dict(), api=api_summary(client), **result)
        raise
    result.update(server=server, api=api_summary(client), applied=server["applied"],
                  action_required=server["action_required"])
    result["changed"] = result["changed"] or server["changed"]
    current = server["current"]
    shape["before"]["server_setting"] = current
    shape["after"]["server_setting"] = list(wanted) if server["applied"] else current
    diff["before"].append(_setting_line(server["setting"], current))
    diff["after"].append(_setting_line(server["setting"], wanted) if server["applied"] else
                         _setting_line(server["setting"], current, " (action required: enter "
                                       + ", ".join(wanted) + ")"))
    if server["action_required"] and module.params["require_applied"]:
        module.fail_json(msg="the Wake-on-LAN addresses are not applied on the server: "
                         + server["action_required"]["message"], **result)


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           required_if=[("server_settings", True, ("username", "password"))])
    p = module.params
    result: t.Dict[str, t.Any] = {"changed": False, "action_required": None, "applied": False, "map_confirmed": False}
    settings_map = checked_destinations(module, result)
    diff: t.Dict[str, t.List[str]] = {"before": [], "after": []}
    shape: t.Dict[str, t.Any] = {"before": {"host_network": None, "server_setting": None},
                                 "after": {"host_network": None, "server_setting": None}, "commands": [], "files": []}
    if p["host_network"]:
        host_network(module, result, diff, shape)
    if not p["server_settings"] and p["state"] == "present":
        result["action_required"] = _server.action_required(
            settings_map, result["values"], None, "the server setting was not checked (server_settings is false)")
    if p["server_settings"]:
        server_setting(module, settings_map, result, diff, shape)
    result["diff"] = {"before": "".join(diff["before"]), "after": "".join(diff["after"])}
    exit_changed(module, change_result(**shape, **result))


if __name__ == "__main__":
    main()
