#!/usr/bin/python
# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: eset_calibrate
short_description: Learn the agent policy nodes, the Wake-on-LAN setting and the broker's answers from your server
version_added: 0.1.0
description:
  - ESET does not publish the REST product id of ESET Management Agent policies, the node paths of the agent's HTTP
    proxy settings, nor the server setting that holds the Wake-on-LAN multicast addresses. This module learns them
    from the administrator's own ESET PROTECT server, read-only, and returns the overrides file that
    M(protectnet.epns.agent_proxy_policy) and M(protectnet.epns.wol_multicast) take as C(settings_map_file).
  - "Agent policy: configure one ESET Management Agent policy in the web console with sentinel values (Advanced
    Settings > HTTP Proxy: a global proxy with host O(sentinel_host) and port O(sentinel_port), Use proxy ticked,
    and save it). The module finds it (O(policy)), reads its C(features[].configuration.product), decodes its data
    (formats 1 and 2) and finds the nodes whose values are the sentinels, with their C(ce_type). The Use proxy switch,
    the proxy configuration type and the direct-connection fall-back are told by their names beside them; what
    cannot be told is reported C(not found) (or C(ambiguous)) and keeps the built-in guess."
  - "Wake-on-LAN: reads each path of O(wol_candidates) with C(POST /v2/configuration:batchGetValues) (On-Prem 13.1+)
    and, with O(wol_discover), the C(server) settings once to find nodes named like Wake-on-LAN. The first path that
    holds a list of addresses is taken."
  - "Broker: given the registered result of M(protectnet.epns.epns_probe) (O(epns_probe_result)), it records what
    EPNS answered on each port: TLS version, certificate, whether a client certificate was asked for, the CONNACK
    code to an anonymous CONNECT, whether the fall-back port carries the same MQTT over TLS."
  - Every item is marked C(confirmed), C(not found) or C(ambiguous). Nothing is written to the server; the
    playbook C(protectnet.epns.calibrate) writes the two files on the controller.
author:
  - protectnet.epns contributors (@protectnet)
extends_documentation_fragment:
  - protectnet.epns.eset_api
  - protectnet.epns._attributes
  - protectnet.epns._attributes.INFO_MODULE
  - protectnet.epns._attributes.ACTIONGROUP_EPNS
options:
  policy:
    description: The uuid or the exact display name of the agent policy that holds the sentinel values.
    type: str
  sentinel_host:
    description: The proxy host typed into the policy's global proxy (a name under C(.invalid) never resolves).
    type: str
    default: calibrate-proxy.invalid
  sentinel_port:
    description: The proxy port typed into the policy's global proxy; an unusual number no other setting holds.
    type: int
    default: 39031
  service_sentinels:
    description:
      - Per-service proxies set in the same policy ("Different Proxy Per Service"), each service name (as in the
        settings map, for example V(replication), V(eset_services)) mapped to C({host, port}), every host and port
        different from the others.
    type: dict
    default: {}
  sentinel_mode:
    description:
      - The Proxy Configuration Type chosen in the sentinel policy; its stored value is learnt for that mode.
      - Defaults to V(per_service) when O(service_sentinels) is given, else V(global).
    type: str
    choices: [global, per_service]
  wake_on_lan:
    description: Read the Wake-on-LAN candidate paths (On-Prem only; ESET PROTECT Cloud has no configuration API).
    type: bool
    default: true
  wol_candidates:
    description: The configuration paths to read, in the order of preference (dotted, such as C(server.a.b)).
    type: list
    elements: str
  wol_discover:
    description: Also read C(server) once and try every node below it whose name contains C(wake) or C(wol).
    type: bool
    default: true
  epns_probe_result:
    description: The registered result of M(protectnet.epns.epns_probe) toward EPNS (or the lab broker).
    type: dict
notes:
  - The API user needs read access to policies and to the server settings. Runs where the API is reachable, usually
    C(localhost).
seealso:
  - module: protectnet.epns.eset_policy_info
  - module: protectnet.epns.agent_proxy_policy
  - module: protectnet.epns.wol_multicast
  - name: Calibration
    description: docs/calibration.md
    link: https://github.com/protectnet/epns/blob/main/docs/calibration.md
"""

EXAMPLES = r"""
- name: Learn from the policy "Calibration (protectnet)" set with the default sentinels
  protectnet.epns.eset_calibrate:
    server: protect.example.com
    ca_path: /etc/pki/eset-protect-ca.pem
    policy: Calibration (protectnet)
  register: calibration

- name: Keep the overrides file
  ansible.builtin.copy:
    content: "{{ calibration.overrides | to_nice_yaml }}"
    dest: files/eset-calibration.yml
    mode: "0644"
"""

RETURN = r"""
findings:
  description:
    - One per learnt fact, with C(item), C(status) (C(confirmed), C(not found), C(ambiguous)), C(value), C(note).
    - Not called C(items), which a template would read as the dict method.
  returned: always
  type: list
  elements: dict
  sample: [{item: product, status: confirmed, value: eset.local.products.agent, note: ""}]
product:
  description: The agent policy product id (C(features[].configuration.product)), or null.
  returned: when O(policy) is given
  type: str
policy:
  description:
    - The sentinel policy (C(uuid), C(name), C(product), C(format), C(sections), C(settings_flat), secrets masked).
  returned: when O(policy) is given
  type: dict
agent_policy:
  description:
    - The learnt part of the agent_proxy_policy settings map.
    - C(confirmed) is true when every node agent_proxy_policy writes for C(services=[all]) was learnt.
  returned: always
  type: dict
map_confirmed:
  description: C(agent_policy.confirmed).
  returned: always
  type: bool
map_error:
  description: Null, or why the learnt map is not usable by agent_proxy_policy.
  returned: always
  type: str
wake_on_lan:
  description: The learnt part of the wol_multicast settings map (C(addresses_path), C(confirmed)), or empty.
  returned: always
  type: dict
wake_on_lan_candidates:
  description: Each path read, with C(path), C(exists), C(value) (secret-named nodes masked) and C(answer).
  returned: always
  type: list
  elements: dict
epns:
  description: What the broker answered per port (C(ports), C(port_443_same_mqtt_over_tls)), or C(probed=false).
  returned: always
  type: dict
overrides:
  description: The overrides file (C(agent_policy), C(wake_on_lan), C(epns), C(calibrated_at), C(server)).
  returned: always
  type: dict
transcript:
  description: The same with the findings, the policy settings and the candidates, for sharing; no secret in it.
  returned: always
  type: dict
api:
  description: Request counters.
  returned: always
  type: dict
"""

import typing as t  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._python_floor import require_supported_python  # noqa: E402

require_supported_python()  # first: the imports below need Python 3.8 and would fail on 3.6 without saying why
from ansible_collections.protectnet.epns.plugins.module_utils._calibrate import (  # noqa: E402
    _agent_policy,
    _broker,
    _transcript,
    _wake_on_lan,
)
from ansible_collections.protectnet.epns.plugins.module_utils._calibrate._sentinel import (  # noqa: E402
    GLOBAL,
    NOT_FOUND,
    CalibrationError,
    item,
)
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._argspec import eset_api_argument_spec  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._errors import EsetApiError  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._module import api_summary, client_from_module  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._resources import PolicyApi  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._hostname import HostNameError, check_host  # noqa: E402


def argument_spec() -> t.Dict[str, t.Any]:
    spec = eset_api_argument_spec()
    spec.update(
        policy={"type": "str"},
        sentinel_host={"type": "str", "default": "calibrate-proxy.invalid"},
        sentinel_port={"type": "int", "default": 39031},
        service_sentinels={"type": "dict", "default": {}},
        sentinel_mode={"type": "str", "choices": ["global", "per_service"]},
        wake_on_lan={"type": "bool", "default": True},
        wol_candidates={"type": "list", "elements": "str"},
        wol_discover={"type": "bool", "default": True},
        epns_probe_result={"type": "dict"},
    )
    return spec


def _sentinel(where: str, host: t.Any, port: t.Any) -> t.Tuple[str, int]:
    if not isinstance(host, str) or not host:
        raise CalibrationError(f"{where}: host must be the proxy host name typed into the policy, got {host!r}")
    try:
        check_host(host, f"{where} host")
    except HostNameError as exc:
        raise CalibrationError(str(exc)) from None
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise CalibrationError(f"{where}: port {port!r} is not a TCP port (1-65535)")
    return host, port


def sentinels(p: t.Mapping[str, t.Any]) -> t.Dict[str, t.Tuple[str, int]]:
    """Service name -> (host, port), global first; every sentinel distinct, or the nodes could not be told apart."""
    out = {GLOBAL: _sentinel("sentinel_host/sentinel_port", p["sentinel_host"], p["sentinel_port"])}
    for name, entry in (p["service_sentinels"] or {}).items():
        if name in (GLOBAL, "all") or not isinstance(entry, dict) or set(entry) != {"host", "port"}:
            raise CalibrationError(f"service_sentinels.{name}: expected a service name other than global/all "
                                   "mapped to {host, port}")
        out[name] = _sentinel(f"service_sentinels.{name}", entry["host"], entry["port"])
    for index, part in ((0, "host"), (1, "port")):
        values = [str(v[index]).lower() for v in out.values()]
        if len(set(values)) != len(values):
            raise CalibrationError(f"the sentinel {part}s must differ from each other: {', '.join(values)}")
    return out


def validate(module: AnsibleModule) -> t.Tuple[t.Dict[str, t.Tuple[str, int]], t.List[str]]:
    p = module.params
    try:
        found = sentinels(p)
    except CalibrationError as exc:
        module.fail_json(msg=str(exc))
        raise
    if p["policy"] is not None and not p["policy"].strip():
        module.fail_json(msg="policy must be the uuid or the display name of the sentinel policy, not empty")
    candidates = list(_wake_on_lan.DEFAULT_CANDIDATES if p["wol_candidates"] is None else p["wol_candidates"])
    bad = _wake_on_lan.bad_paths(candidates)
    if bad:
        module.fail_json(msg="wol_candidates: {} not a configuration path (dotted names such as "
                         "server.wakeOnLan.multicastAddresses)".format(", ".join(repr(b) for b in bad)))
    return found, candidates


def learn(module: AnsibleModule, client: t.Any, found: t.Mapping[str, t.Tuple[str, int]],
          candidates: t.List[str]) -> t.Dict[str, t.Any]:
    p = module.params
    learnt: t.Dict[str, t.Any] = {"items": [], "agent_policy": {"confirmed": False}, "wake_on_lan": {},
                                  "wake_on_lan_candidates": [], "policy": None, "map_error": None}
    if p["policy"]:
        mode = p["sentinel_mode"] or ("per_service" if p["service_sentinels"] else GLOBAL)
        policy = _agent_policy.learn(PolicyApi(client), p["policy"], found, mode)
        for secret in policy.pop("secrets"):
            if len(secret) >= _transcript.SHORTEST_SECRET:
                module.no_log_values.add(secret)
        learnt.update(policy)
    else:
        learnt["items"].append(item("agent_policy", NOT_FOUND, None, "no policy was given"))
    if p["wake_on_lan"] and p["deployment"] != "cloud":
        wol = _wake_on_lan.learn(client, candidates, p["wol_discover"])
        learnt["items"] += wol["items"]
        learnt.update(wake_on_lan=wol["wake_on_lan"], wake_on_lan_candidates=wol["candidates"])
    else:
        learnt["items"].append(item("wake_on_lan.addresses_path", NOT_FOUND, None,
                                    "not read (ESET PROTECT Cloud has no configuration API)"
                                    if p["wake_on_lan"] else "not read (wake_on_lan is false)"))
    broker = _broker.summarize(p["epns_probe_result"])
    learnt["items"] += broker["items"]
    learnt["epns"] = broker["epns"]
    return learnt


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    found, candidates = validate(module)
    client = client_from_module(module)
    try:
        learnt = learn(module, client, found, candidates)
    except CalibrationError as exc:
        module.fail_json(msg=str(exc), api=api_summary(client))
        raise
    except EsetApiError as exc:
        module.fail_json(msg=f"ESET PROTECT API: {exc}", error=exc.to_dict(), api=api_summary(client))
        raise
    learnt["api"] = api_summary(client)
    overrides, transcript = _transcript.build(module.params, learnt, set(module.no_log_values),
                                              module.params["username"])
    policy = learnt["policy"] or {}
    module.exit_json(changed=False, findings=transcript["findings"], product=policy.get("product"),
                     policy=transcript["policy"], agent_policy=overrides["agent_policy"],
                     map_confirmed=bool(overrides["agent_policy"].get("confirmed")), map_error=learnt["map_error"],
                     wake_on_lan=overrides["wake_on_lan"], wake_on_lan_candidates=transcript["wake_on_lan_candidates"],
                     epns=overrides["epns"], overrides=overrides, transcript=transcript, api=learnt["api"])


if __name__ == "__main__":
    main()
