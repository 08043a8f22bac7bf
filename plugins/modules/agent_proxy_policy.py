#!/usr/bin/python
# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: agent_proxy_policy
short_description: Make ESET Management Agents reach EPNS through an HTTP proxy, with an ESET PROTECT policy
version_added: 0.1.0
description:
  - Manages one ESET Management Agent policy, found by its name, that sets the agents' HTTP proxy (host, port,
    which agent services use it, and whether they fall back to a direct connection), and its assignments to device
    groups with their rank. Agents reach ESET's push notification service (EPNS) through that proxy.
  - The ESET PROTECT API has no update call. When the wanted settings differ from the existing policy, the module
    creates a new policy with the same name, assigns it to the same targets at the same ranks (or O(targets) at
    O(rank)), and only then deletes the old policy. If any step fails, the new policy is deleted again before the
    old one was touched, or, when the failure comes after the new policy covers every target, both stay; every
    target is always covered by the old or the new policy, and the result and the error message say what was done.
    A rerun finishes an interrupted replacement.
  - B(Not confirmed against a real ESET PROTECT server:) ESET does not publish which policy nodes hold the agent's
    proxy host, port and services, nor the product id of agent policies. The module writes them where its settings
    map says (see O(settings_map)); learn the real node names with M(protectnet.epns.eset_policy_info), or use
    O(template_policy) to clone a policy an administrator configured once in the console.
author:
  - protectnet.epns contributors (@protectnet)
extends_documentation_fragment:
  - protectnet.epns.eset_api
  - protectnet.epns._attributes
  - protectnet.epns._attributes.ACTIONGROUP_EPNS
  - protectnet.epns._result
attributes:
  check_mode:
    support: full
    details:
      - Check mode reads the policies, assignments and groups and sends no write request.
  diff_mode:
    support: full
    details:
      - The diff shows the managed policies (settings as C(section/node/...) paths) and their assignments.
  action_group:
    support: full
options:
  name:
    description: Display name of the managed policy. Policies with this name (that are not built in) are managed.
    type: str
    required: true
  description:
    description:
      - Description of the policy. A different description makes the policy be replaced.
      - A policy the module creates carries the mark of the run that created it after this text, such as
        C([protectnet.epns run 0f3c...]), so that the run can find it after a lost API answer instead of creating a
        second one. The mark is ignored when descriptions are compared and left out of the diff.
    type: str
    default: "Managed by Ansible (protectnet.epns.agent_proxy_policy: agent HTTP proxy for EPNS)"
  state:
    description: V(present) creates or replaces the policy; V(absent) deletes every policy with O(name).
    type: str
    choices: [present, absent]
    default: present
  proxy_host:
    description:
      - The HTTP proxy host name or address the agents use, for example ESET Bridge. Required for V(present).
      - Only a host; no scheme, port, path or credentials.
    type: str
  proxy_port:
    description: The HTTP proxy port. ESET Bridge listens on 3128.
    type: int
    default: 3128
  services:
    description:
      - Which agent services use the proxy. V(all) sets one proxy for every service (the console's global proxy).
        Otherwise name the services (the console's "Different Proxy Per Service"); the others are set to not use
        a proxy.
      - The default map knows V(replication) (Replication to the ESET PROTECT server) and V(eset_services) (ESET
        services, such as updates, packages and telemetry). O(settings_map) can add more.
      - Which service carries EPNS is not documented; V(all) is the safe choice.
    type: list
    elements: str
    default: [all]
  fallback_direct:
    description: Agents use a direct connection when the proxy is not available.
    type: bool
    default: true
  targets:
    description:
      - Device groups the policy is assigned to, each by uuid or by name path from the root, such as
        C(All/Servers/Linux) (the root may be left out; write a C(/) inside a group name as C(\/)).
      - When given, this is the whole list; assignments to other targets are removed. When left out, the policy
        keeps the targets it has (and a replacement takes over the old policy's targets).
    type: list
    elements: str
  rank:
    description:
      - The rank of the assignment on each target (1 is the highest priority). When left out, a replacement keeps
        each old assignment's rank and a new assignment goes to the bottom.
      - It cannot be higher than the number of assignments of the target (the server answers 412).
    type: int
  template_policy:
    description:
      - Uuid or display name of an existing policy to clone. The new policy copies its product id and every setting
        and only changes the mapped proxy values. Use it with a policy an administrator configured once in the
        console, so the policy carries ESET's real node layout.
      - Without it the module builds a format 1 policy with only the mapped values.
    type: str
  settings_map:
    description:
      - Overrides of the built-in map of where the proxy settings live in the policy data, merged key by key over the
        defaults. Keys C(product) (REST product id), C(section) (the product key inside the data), C(proxy_mode),
        C(fallback_direct) and C(services) (each C(use), C(host), C(port)); each node is C({path, ce_type}).
      - See C(docs/agent-proxy-policy.md) for the shape and the defaults, which are NOT confirmed against a real
        server.
      - Key C(confirmed) (boolean, default V(false)) is what RV(map_confirmed) reports; set it to V(true) once the
        paths are checked against a policy of your server.
    type: dict
  settings_map_file:
    description:
      - A JSON or YAML file on the host that runs the module, with the same content as O(settings_map), or the
        overrides file the playbook C(protectnet.epns.calibrate) writes (its C(agent_policy) section is taken).
        When both are given, O(settings_map) is merged over the file.
    type: path
  reveal_secrets:
    description:
      - Show the values of settings that hold secrets in the diff. By default they read C(********) there and are
        redacted from errors; which settings count as secret is described under
        O(protectnet.epns.eset_policy_info#module:reveal_secrets).
      - Only the output changes; the policy the module writes always keeps every value.
    type: bool
    default: false
  proxy_username:
    description:
      - Not supported. EPNS and agent replication cannot use a proxy that requires authentication, so the module
        refuses it. Use a proxy that allows the agents without credentials (for example by source address).
    type: str
  proxy_password:
    description: Not supported, see O(proxy_username).
    type: str
notes:
  - Run it where the API is reachable, usually C(localhost) or a delegate; the role M(protectnet.epns.epns_agent_proxy)
    does so.
  - The module only reads and writes policies, assignments and device groups; the API user needs those permissions.
seealso:
  - module: protectnet.epns.eset_policy_info
  - name: ESET knowledge base KB7738, agent proxy settings
    description: Where the console keeps the agent's HTTP proxy.
    link: https://support.eset.com/en/kb7738
"""

EXAMPLES = r"""
- name: Agents in the branch offices use ESET Bridge for everything
  protectnet.epns.agent_proxy_policy:
    server: protect.example.com
    ca_path: /etc/pki/eset-protect-ca.pem
    name: EPNS via ESET Bridge
    proxy_host: bridge.example.com
    proxy_port: 3128
    targets:
      - All/Branch offices
    rank: 1
  delegate_to: localhost

- name: Only replication and ESET services through the proxy, cloud tenant, credentials from the environment
  protectnet.epns.agent_proxy_policy:
    deployment: cloud
    region: eu
    name: EPNS via proxy
    proxy_host: proxy.example.com
    services: [replication, eset_services]
    fallback_direct: false

- name: Clone a policy configured once in the console, with the node names learnt from it
  protectnet.epns.agent_proxy_policy:
    server: protect.example.com
    name: EPNS via ESET Bridge
    template_policy: Agent proxy (configured by hand)
    settings_map_file: files/agent-proxy-map.yml
    proxy_host: bridge.example.com

- name: Remove the policy
  protectnet.epns.agent_proxy_policy:
    server: protect.example.com
    name: EPNS via ESET Bridge
    state: absent
"""

RETURN = r"""
policy:
  description: The managed policy after the run (null for O(state=absent)); C(uuid) is C((new policy)) in check mode.
  returned: always
  type: dict
  sample: {uuid: 8c1b..., name: EPNS via ESET Bridge, product: eset.local.products.agent, template_uuid: null,
           format: "1"}
before:
  description:
    - The policies with O(name) as the run found them, each in the shape of RV(policy). C(template_uuid) is null,
      because a policy does not record what it was cloned from; C(format) is null when its data cannot be decoded.
    - An empty list when there was none.
  returned: always
  type: list
  elements: dict
  sample: [{uuid: 8c1b..., name: EPNS via ESET Bridge, product: eset.local.products.agent, template_uuid: null,
            format: "1"}]
after:
  description:
    - The policies with O(name) after the run (as they would be, in check mode), in the same shape as RV(before) -
      the managed policy, RV(policy), alone; an empty list for O(state=absent).
    - C(commands) and C(files) are always empty - every step is an ESET PROTECT API call (RV(planned), RV(actions)).
  returned: always
  type: list
  elements: dict
  sample: [{uuid: 9d2c..., name: EPNS via ESET Bridge, product: eset.local.products.agent, template_uuid: null,
            format: "1"}]
settings:
  description: The mapped values written, by map key.
  returned: when O(state=present)
  type: dict
  sample: {proxy_mode: 0, services.global.use: true, services.global.host: bridge.example.com,
           services.global.port: 3128, fallback_direct: true}
settings_nodes:
  description: The same values by node path (C(section/node/...)), as stored.
  returned: when O(state=present)
  type: dict
assignments:
  description: The policy's assignments after the run, each with C(policy), C(target) (a label) and C(rank).
  returned: when O(state=present)
  type: list
  elements: dict
replaced:
  description: An existing policy with the name was replaced by a new one.
  returned: always
  type: bool
removed_policies:
  description: Uuids of the policies with the name that were (or, in check mode, would be) deleted.
  returned: always
  type: list
  elements: str
planned:
  description: The steps the run needed, in order (what check mode would do).
  returned: always
  type: list
  elements: str
run_mark:
  description:
    - The mark this run puts in the description of a policy it creates. After a failure whose outcome is unknown
      (C(coverage) says so), a policy carrying it may exist; a rerun keeps it if it matches or removes it.
  returned: always
  type: str
  sample: "[protectnet.epns run 0f3c2a9e4b1d4f6a8c7e5d3b2a1f0e9d]"
actions:
  description: The steps that were done, in order, including a rollback. Also returned on failure.
  returned: always
  type: list
  elements: str
failed_step:
  description: The step that failed.
  returned: on failure during the changes
  type: str
not_done:
  description: The planned steps after the failed one.
  returned: on failure during the changes
  type: list
  elements: str
rollback:
  description: Whether the new policy was deleted again after a failure (C(ok), C(deleted), C(error)).
  returned: on failure during the changes
  type: dict
coverage:
  description: One sentence on which policy covers the targets after a failure.
  returned: on failure during the changes
  type: str
error:
  description: The failed API call (C(status), C(method), C(url), C(body), C(request_id), C(message)).
  returned: on API failure
  type: dict
api:
  description: Request counters (requests, retries, logins, token refreshes, re-authentications, collected 202).
  returned: always
  type: dict
map_confirmed:
  description: Whether the settings map in use is confirmed against a real server (false for the built-in one).
  returned: always
  type: bool
"""

import typing as t  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._python_floor import require_supported_python  # noqa: E402

require_supported_python()  # first: the imports below need Python 3.8 and would fail on 3.6 without saying why
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._argspec import eset_api_argument_spec  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._errors import EsetApiError  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._module import api_summary, client_from_module  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._resources import PolicyApi  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._eset_policy._agent_proxy import (  # noqa: E402
    AgentProxyPolicy,
    ReplacementFailed,
)
from ansible_collections.protectnet.epns.plugins.module_utils._eset_policy._codec import PolicyDataError  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._eset_policy._desired import (  # noqa: E402
    AgentProxyError,
    Desired,
)
from ansible_collections.protectnet.epns.plugins.module_utils._eset_policy._settings_map import (  # noqa: E402
    ALL_SERVICES,
    GLOBAL,
    MapError,
    build_map,
    load_settings_file,
)
from ansible_collections.protectnet.epns.plugins.module_utils._hostname import HostNameError, check_host  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._result import change_result, exit_changed  # noqa: E402

DEFAULT_DESCRIPTION = "Managed by Ansible (protectnet.epns.agent_proxy_policy: agent HTTP proxy for EPNS)"
NO_PROXY_AUTH = ("proxy credentials are not supported: ESET's push notification service (EPNS) and agent "
                 "replication cannot use a proxy that requires authentication. Allow the agents through the proxy "
                 "without credentials (for example by source address) and remove {0}")


def argument_spec() -> t.Dict[str, t.Any]:
    spec = eset_api_argument_spec()
    spec.update({
        "name": {"type": "str", "required": True},
        "description": {"type": "str", "default": DEFAULT_DESCRIPTION},
        "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        "proxy_host": {"type": "str"},
        "proxy_port": {"type": "int", "default": 3128},
        "services": {"type": "list", "elements": "str", "default": [ALL_SERVICES]},
        "fallback_direct": {"type": "bool", "default": True},
        "targets": {"type": "list", "elements": "str"},
        "rank": {"type": "int"},
        "template_policy": {"type": "str"},
        "settings_map": {"type": "dict"},
        "settings_map_file": {"type": "path"},
        "reveal_secrets": {"type": "bool", "default": False},
        "proxy_username": {"type": "str", "no_log": False},
        "proxy_password": {"type": "str", "no_log": True},
    })
    return spec


def validate(module: AnsibleModule, mapping: t.Mapping[str, t.Any]) -> None:
    p = module.params
    if p["proxy_username"] is not None or p["proxy_password"] is not None:
        module.fail_json(msg=NO_PROXY_AUTH.format("proxy_username and proxy_password"))
    if not p["name"].strip():
        module.fail_json(msg="name must not be empty")
    if p["state"] == "absent":
        return
    if not p["proxy_host"]:
        module.fail_json(msg="state is present but proxy_host is missing")
    if "@" in p["proxy_host"]:
        userinfo = p["proxy_host"].rsplit("@", 1)[0]
        for secret in (userinfo, userinfo.split(":", 1)[-1]):
            module.no_log_values.add(secret)
        module.fail_json(msg=NO_PROXY_AUTH.format("the user name and password from proxy_host"))
    try:
        check_host(p["proxy_host"], "proxy_host", brackets=True, port_option="proxy_port")
    except HostNameError as exc:
        module.fail_json(msg=str(exc))
    if not 0 < p["proxy_port"] < 65536:
        module.fail_json(msg="proxy_port: {} is not a TCP port".format(p["proxy_port"]))
    if p["rank"] is not None and p["rank"] < 1:
        module.fail_json(msg="rank: {} is not allowed; 1 is the highest rank".format(p["rank"]))
    known = [s for s in mapping["services"] if s != GLOBAL]
    services = p["services"]
    if not services:
        module.fail_json(msg="services must name at least one service, or all")
    if ALL_SERVICES in services and len(services) > 1:
        module.fail_json(msg="services: all cannot be combined with single services")
    unknown = [s for s in services if s != ALL_SERVICES and s not in known]
    if unknown:
        module.fail_json(
            msg="services: unknown {}; choose all or from {}".format(", ".join(unknown), ", ".join(known)))
    if p["targets"] is not None and any(not ref.strip() for ref in p["targets"]):
        module.fail_json(msg="targets must not contain empty entries")


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    override: t.Dict[str, t.Any] = {}
    try:
        if p["settings_map_file"]:
            override.update(load_settings_file(p["settings_map_file"], "agent_policy"))
        if p["settings_map"]:
            override.update(p["settings_map"])
        mapping = build_map(override)
    except MapError as exc:
        module.fail_json(msg=str(exc))
    validate(module, mapping)
    if not override and p["state"] == "present":
        module.warn("agent_proxy_policy uses the built-in settings map, which is NOT confirmed against a real ESET "
                    "PROTECT server; check the node names with eset_policy_info (docs/agent-proxy-policy.md)")
    client = client_from_module(module)
    desired = Desired(name=p["name"], description=p["description"], state=p["state"], proxy_host=p["proxy_host"],
                      proxy_port=p["proxy_port"], services=list(p["services"]), fallback_direct=p["fallback_direct"],
                      targets=p["targets"], rank=p["rank"], template_policy=p["template_policy"],
                      reveal_secrets=p["reveal_secrets"])
    runner = AgentProxyPolicy(PolicyApi(client), desired, mapping, module.check_mode, module.warn)
    common = {"map_confirmed": bool(mapping.get("confirmed"))}
    try:
        result = runner.run()
    except ReplacementFailed as exc:
        info = dict(exc.info)
        module.fail_json(api=api_summary(client), **common, **info)
    except (AgentProxyError, PolicyDataError) as exc:
        module.fail_json(msg=str(exc), actions=runner.actions, changed=bool(runner.actions),
                         api=api_summary(client), **common)
    except EsetApiError as exc:
        module.fail_json(msg=str(exc), error=exc.to_dict(), actions=runner.actions, changed=bool(runner.actions),
                         api=api_summary(client), **common)
    exit_changed(module, change_result(commands=[], files=[], api=api_summary(client), **common, **result))


if __name__ == "__main__":
    main()
