#!/usr/bin/python
# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: wol_probe
short_description: Prove that Wake-on-LAN magic packets reach the agents
version_added: 0.1.0
description:
  - Three modes, used together by the role M(protectnet.epns.epns_wol) (or a playbook of your own).
  - V(listen), on each agent (run it with C(async) and C(poll 0)), binds UDP O(port) on IPv4 and IPv6, joins the
    multicast O(groups), and records every magic packet for O(mac) (the probe MAC, not a real machine's), with the
    address it was sent to, where it came from and when. It stops after O(listen_seconds), or as soon as every
    address in O(expect) arrived; the sockets are always closed.
  - "V(send), on the ESET PROTECT server host, sends O(count) magic packets for O(mac) (with the SecureOn password
    O(secureon) if given) to each of O(destinations), O(interval) seconds apart, and reports per destination
    whether the host could send it and why not (its own egress firewall: C(server_firewall); no route: C(no_route))."
  - V(report), anywhere (usually the controller), turns the send and listen results into a destination x agent
    verdict (arrived or not, and why) and a section for M(protectnet.epns.epns_report).
  - A probe does not wake anything, because the probe MAC is a locally administered address no machine has.
author:
  - protectnet.epns contributors (@protectnet)
extends_documentation_fragment:
  - protectnet.epns._attributes
  - protectnet.epns._attributes.INFO_MODULE
options:
  mode:
    description: What to do.
    type: str
    choices: [listen, send, report]
    required: true
  port:
    description: UDP port.
    type: int
    choices: [7, 9]
    default: 9
  mac:
    description: The MAC in the magic packet.
    type: str
    default: "02:50:4e:57:4f:4c"
  secureon:
    description: SecureOn password, 6 bytes like a MAC or 4 bytes as C(a.b.c.d). listen checks that it matches.
    type: str
  groups:
    description: V(listen) multicast groups to join (IPv4 or IPv6); broadcasts need no join.
    type: list
    elements: str
    default: []
  expect:
    description:
      - V(listen) stop early once a packet sent to each of these addresses arrived.
      - With O(destinations), their multicast groups are joined and the ones meant for this host (groups, and the
        broadcasts of subnets this host is on) are added here.
    type: list
    elements: str
    default: []
  listen_seconds:
    description: V(listen) the longest time to listen.
    type: float
    default: 10
  stop_file:
    description:
      - V(listen) stop one second after this file appears (create it once the sender is done); removed at the end.
    type: path
  ready_file:
    description:
      - V(listen) a file written once the sockets are bound (wait for it before sending), removed at the end.
    type: path
  interface:
    description:
      - Interface for joining groups (V(listen)) or sending multicast (V(send)); default is the routing table's choice.
    type: str
  destinations:
    description:
      - V(send) and V(report) the destinations, as addresses or as the dicts that
        M(protectnet.epns.wol_multicast) returns in C(destinations) (V(report) needs them to tell broadcasts from
        groups).
    type: list
    elements: raw
    default: []
  count:
    description: V(send) packets per destination.
    type: int
    default: 3
  interval:
    description: V(send) seconds between rounds.
    type: float
    default: 0.3
  ttl:
    description:
      - V(send) multicast TTL / hop limit set on the socket. 1 is what Linux uses for a program that sets none (a
        firewall rule of M(protectnet.epns.wol_multicast) may rewrite it on the way out).
    type: int
    default: 1
  sends:
    description: V(report) the C(sends) of the V(send) run.
    type: list
    elements: dict
    default: []
  agents:
    description: V(report) agent name -> its V(listen) result (or a failure with C(failed) and C(msg)).
    type: dict
    default: {}
seealso:
  - module: protectnet.epns.wol_multicast
  - module: protectnet.epns.wol_nic
  - module: protectnet.epns.epns_report
"""

EXAMPLES = r"""
- name: Listen on the agents
  protectnet.epns.wol_probe:
    mode: listen
    groups: [239.255.0.9]
    ready_file: /run/protectnet_epns/wol-listen.ready
  async: 30
  poll: 0
  register: listener

- name: Send from the ESET PROTECT server host
  protectnet.epns.wol_probe:
    mode: send
    destinations: [239.255.0.9, 10.1.2.255]
  delegate_to: eset-server
  run_once: true
  register: sent
"""

RETURN = r"""
listening:
  description: V(listen) the sockets were bound.
  returned: mode listen
  type: bool
joined:
  description: V(listen) the groups joined.
  returned: mode listen
  type: list
  elements: str
arrivals:
  description:
    - "V(listen) magic packets for O(mac): C(destination) (the address it was sent to), C(source), C(source_port),
      C(at), C(at_ms), C(mac), C(secureon_ok), C(ttl) (the TTL / hop limit it arrived with)."
  returned: mode listen
  type: list
  elements: dict
addresses:
  description: V(listen) this host's global addresses with prefix (for the broadcast verdict).
  returned: mode listen
  type: list
  elements: str
errors:
  description: V(listen) groups that could not be joined and the like.
  returned: mode listen
  type: list
  elements: str
sends:
  description:
    - V(send) per destination C(address), C(kind), C(port), C(sent), C(ok), C(first_sent_at), C(first_sent_ms),
      C(failure) (C(class), C(message), C(errno)).
  returned: mode send
  type: list
  elements: dict
cells:
  description: V(report) destination -> agent -> C(status), C(reason), C(detail), C(source), C(at), C(latency_ms),
    C(ttl).
  returned: mode report
  type: dict
counts:
  description: V(report) how many cells have each status.
  returned: mode report
  type: dict
section:
  description:
    - V(report) the Wake-on-LAN section for M(protectnet.epns.epns_report) (C(title), C(text), C(items), C(table)).
  returned: mode report
  type: dict
"""

import json  # noqa: E402
import os  # noqa: E402
import typing as t  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._python_floor import require_supported_python  # noqa: E402

require_supported_python()  # first: the imports below need Python 3.8 and would fail on 3.6 without saying why
from ansible_collections.protectnet.epns.plugins.module_utils._wol import _report, _wire  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._wol._packet import (  # noqa: E402
    PacketError,
    parse_mac,
    parse_secureon,
)
from ansible_collections.protectnet.epns.plugins.module_utils._wol._validate import (  # noqa: E402
    DestinationError,
    classify,
)


def _addresses(module: AnsibleModule) -> t.List[str]:
    rc, out, _err = module.run_command(["ip", "-j", "addr", "show"])
    found: t.List[str] = []
    if rc == 0:
        for link in json.loads(out or "[]"):
            for info in link.get("addr_info", []):
                if info.get("scope") == "global":
                    found.append(f"{info['local']}/{info['prefixlen']}")
    return found


def _dest(item: t.Any) -> t.Dict[str, t.Any]:
    if isinstance(item, dict):
        return dict(item)
    try:
        return classify(str(item))._asdict()
    except DestinationError as exc:
        raise ValueError(str(exc)) from exc


ARGUMENT_SPEC = {
    "mode": {"type": "str", "choices": ["listen", "send", "report"], "required": True},
    "port": {"type": "int", "choices": [7, 9], "default": 9},
    "mac": {"type": "str", "default": "02:50:4e:57:4f:4c"},
    "secureon": {"type": "str", "no_log": True},
    "groups": {"type": "list", "elements": "str", "default": []},
    "expect": {"type": "list", "elements": "str", "default": []},
    "listen_seconds": {"type": "float", "default": 10},
    "ready_file": {"type": "path"},
    "stop_file": {"type": "path"},
    "interface": {"type": "str"},
    "destinations": {"type": "list", "elements": "raw", "default": []},
    "count": {"type": "int", "default": 3},
    "interval": {"type": "float", "default": 0.3},
    "ttl": {"type": "int", "default": 1},
    "sends": {"type": "list", "elements": "dict", "default": []},
    "agents": {"type": "dict", "default": {}},
}


def _send(module: AnsibleModule, dests: t.List[t.Dict[str, t.Any]], mac: bytes, secureon: bytes) -> None:
    params = module.params
    problems = [f"{name} {params[name]}: expected {accepted}" for name, ok, accepted in (
        ("count", 1 <= params["count"] <= 20, "1 to 20 packets per destination"),
        ("interval", 0 <= params["interval"] <= 5, "0 to 5 seconds"),
        ("ttl", 0 <= params["ttl"] <= 255, "0 to 255")) if not ok]
    if not dests:
        problems.insert(0, "destinations is empty: mode send needs the addresses to send to")
    if problems:
        module.fail_json(msg="; ".join(problems))
    try:
        sends = _wire.send(dests, params["port"], mac, secureon, params["count"], params["interval"], params["ttl"],
                           params["interface"])
    except OSError as exc:
        module.fail_json(msg=f"cannot send: {exc}")
        raise
    first = min((s["first_sent_at"] for s in sends if s["first_sent_at"]), default=None)
    module.exit_json(changed=False, sends=sends, started_at=first)


def _remove(path: t.Optional[str]) -> None:
    if path:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _listen(module: AnsibleModule, dests: t.List[t.Dict[str, t.Any]], mac: bytes, secureon: bytes) -> None:
    params = module.params
    if not 0 < params["listen_seconds"] <= 600:
        module.fail_json(msg=f"listen_seconds {params['listen_seconds']}: expected more than 0 and at most 600 seconds")
    addresses = _addresses(module)
    groups, expect = _report.listen_targets(dests, params["groups"], params["expect"], addresses)
    started = _wire.now_iso()
    try:
        listener = _wire.Listener(params["port"], groups, params["interface"])
    except OSError as exc:
        module.fail_json(msg=f"cannot listen on UDP port {params['port']}: {exc}", listening=False, addresses=addresses)
        raise
    ready = params["ready_file"]
    _remove(params["stop_file"])  # a leftover from an interrupted run must not end this one
    try:
        if ready:
            os.makedirs(os.path.dirname(ready) or ".", exist_ok=True)
            with open(ready, "w", encoding="utf-8") as handle:
                handle.write(str(os.getpid()) + "\n")
        arrivals = listener.collect(params["listen_seconds"], mac, secureon, expect, stop_file=params["stop_file"])
    finally:
        listener.close()
        _remove(ready)
        _remove(params["stop_file"])
    module.exit_json(changed=False, listening=True, joined=listener.joined, errors=listener.errors, expected=expect,
                     arrivals=arrivals, addresses=addresses, started_at=started, ended_at=_wire.now_iso())


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    try:
        mac = parse_mac(params["mac"])
        secureon = parse_secureon(params["secureon"])
        dests = [_dest(d) for d in params["destinations"]]
    except (PacketError, ValueError) as exc:
        module.fail_json(msg=str(exc))
        raise
    if params["mode"] == "report":  # pure: the verdict from the other two modes' results, no host I/O
        module.exit_json(changed=False, **_report.matrix(dests, params["sends"], params["agents"], params["port"]))
    elif params["mode"] == "send":
        _send(module, dests, mac, secureon)
    else:
        _listen(module, dests, mac, secureon)


if __name__ == "__main__":
    main()
