#!/usr/bin/python
# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: eset_policy_info
short_description: List ESET PROTECT policies, or show one with its decoded settings and its assignments
version_added: 0.1.0
description:
  - Lists the policies of an ESET PROTECT On-Prem 13+ server or an ESET PROTECT Cloud tenant, or returns the
    policies with a given uuid or display name.
  - Decodes each policy's settings (C(configuration.data), formats 1 and 2) into a tree and a flat list of
    C(section/node/.../leaf) paths, so an administrator can look inside a real ESET Management Agent policy and learn
    the node names and the product id that M(protectnet.epns.agent_proxy_policy) needs in its settings map.
author:
  - protectnet.epns contributors (@protectnet)
extends_documentation_fragment:
  - protectnet.epns.eset_api
  - protectnet.epns._attributes
  - protectnet.epns._attributes.INFO_MODULE
  - protectnet.epns._attributes.ACTIONGROUP_EPNS
options:
  uuid:
    description: Return only the policy with this uuid.
    type: str
  name:
    description: Return only the policies with this display name (exact match; several may share it).
    type: str
  decode:
    description:
      - Decode each policy's settings. Defaults to V(true) when O(uuid) or O(name) is given and to V(false) when
        listing every policy.
    type: bool
  include_assignments:
    description: Return each policy's assignments (target label and rank). One more call per policy.
    type: bool
    default: true
  include_nested:
    description:
      - Also decode policies carried inside the data (an installer's C(originalPolicies.lzma) holds further
        policies as base64 lines).
    type: bool
    default: false
  reveal_secrets:
    description:
      - Show the values of settings that hold secrets. By default they read C(********) in RV(policies[].settings),
        RV(policies[].settings_flat) and RV(policies[].nested), and are redacted from errors.
      - A setting is secret when its node name or a textual C(ce_type) names a password, key or token (for example
        C(ProxyPassword), C(ApiKey)), when its value is a private key, or when it sits in an opaque format 2 member
        (C(userData), C(originalPolicies), whose content we cannot interpret), whatever its name.
      - With V(true) the result holds those secrets in clear text; protect it (C(no_log), vault) accordingly.
    type: bool
    default: false
notes:
  - The settings of a policy are shown as sections; a section is the product key of a format 1 policy (for
    example C(endpoint)), C(standalone) for inline format 2 settings, or one document of an LZMA member, named by its
    product (for example C(efs_unix)) or C(feature.NAME).
seealso:
  - module: protectnet.epns.agent_proxy_policy
"""

EXAMPLES = r"""
- name: Find the built-in ESET Management Agent policies and their product id
  protectnet.epns.eset_policy_info:
    server: protect.example.com
    ca_path: /etc/pki/eset-protect-ca.pem
  register: all_policies
  delegate_to: localhost

- name: Show the product ids seen
  ansible.builtin.debug:
    msg: "{{ all_policies.policies | map(attribute='product') | unique }}"

- name: Look inside one agent policy configured in the console
  protectnet.epns.eset_policy_info:
    server: protect.example.com
    name: Agent proxy (configured by hand)
  register: agent_policy

- name: Print its node paths and values
  ansible.builtin.debug:
    var: agent_policy.policies[0].settings_flat
"""

RETURN = r"""
policies:
  description: The policies found, in the server's order.
  returned: always
  type: list
  elements: dict
  contains:
    uuid:
      description: Policy uuid.
      type: str
    name:
      description: Display name.
      type: str
    description:
      description: Description.
      type: str
    built_in:
      description: Built-in policies cannot be changed or deleted.
      type: bool
    product:
      description: The C(configuration.product) of the legacy policy feature (the agent's product id lives here).
      type: str
    format:
      description: The data format, C("1") or C("2"); null when not decoded.
      type: str
    sections:
      description: Section names of the decoded settings.
      type: list
      elements: str
    archive_members:
      description: Member names of a format 2 archive.
      type: list
      elements: str
    settings:
      description: The decoded settings trees by section (C(ce_flags), C(ce_type), C(ce_value) nodes as stored).
      type: dict
    settings_flat:
      description: Every leaf as C(section/node/.../leaf) with its value as text (secrets masked, O(reveal_secrets)).
      type: dict
    secrets_masked:
      description: Whether secret values in this policy's settings are shown as C(********).
      type: bool
    nested:
      description:
        - With O(include_nested), policies found inside the data, each with C(format), C(sections) and
          C(settings_flat).
      type: list
      elements: dict
    decode_error:
      description: Why the data could not be decoded, else null.
      type: str
    assignments:
      description:
        - With O(include_assignments), each assignment's C(uuid), C(target) label, raw C(target_ref) and C(rank).
      type: list
      elements: dict
    features:
      description: Feature ids of the policy.
      type: list
      elements: int
api:
  description: Request counters.
  returned: always
  type: dict
"""

import typing as t  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._python_floor import require_supported_python  # noqa: E402

require_supported_python()  # first: the imports below need Python 3.8 and would fail on 3.6 without saying why
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._argspec import eset_api_argument_spec  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._errors import EsetApiError  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._module import api_summary, client_from_module  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._resources import (  # noqa: E402
    GroupIndex,
    PolicyApi,
    legacy_feature,
)
from ansible_collections.protectnet.epns.plugins.module_utils._eset_policy import _codec as codec  # noqa: E402


def settings_view(data: codec.PolicyData, reveal: bool, opaque: bool = False) -> t.Dict[str, t.Dict[str, t.Any]]:
    """The sections as the result shows them: secrets masked unless ``reveal``."""
    return data.sections() if reveal else codec.masked_sections(data, opaque)


def describe(api: PolicyApi, policy: t.Dict[str, t.Any], decode: bool, assignments: bool, nested: bool,
             groups: t.Callable[[], GroupIndex], reveal: bool = False) -> t.Dict[str, t.Any]:
    feature = legacy_feature(policy)
    conf = (feature or {}).get("configuration") or {}
    out: t.Dict[str, t.Any] = {
        "uuid": policy.get("uuid"), "name": policy.get("displayName"), "description": policy.get("description"),
        "built_in": bool(policy.get("builtIn")), "product": conf.get("product"),
        "features": [f.get("featureId") for f in policy.get("features") or []],
        "format": None, "sections": [], "archive_members": [], "decode_error": None,
    }
    if decode:
        if feature is None:
            out["decode_error"] = "no ESET PROTECT policy data (featureId 4294967295)"
        else:
            try:
                data = codec.decode(conf.get("data") or "")
            except codec.PolicyDataError as exc:
                out["decode_error"] = str(exc)
            else:
                if not reveal:
                    for secret in codec.secret_values(data):
                        api.client.add_secret(secret)
                out.update(data.summary())
                out["secrets_masked"] = not reveal
                out["settings"] = settings_view(data, reveal)
                out["settings_flat"] = codec.flatten(out["settings"])
                if nested:
                    # Policies carried inside the data are opaque: every value is masked.
                    out["nested"] = [dict(inner.summary(), settings_flat=codec.flatten(settings_view(inner, reveal,
                                                                                                     opaque=True)))
                                     for inner in data.nested()]
    if assignments and policy.get("uuid"):
        index = groups()
        out["assignments"] = [{"uuid": a.get("uuid"), "target": index.label(a.get("target") or {}),
                               "target_ref": a.get("target"), "rank": a.get("rank")}
                              for a in api.list_assignments(str(policy["uuid"]))]
    return out


def main() -> None:
    spec = eset_api_argument_spec()
    spec.update({
        "uuid": {"type": "str"},
        "name": {"type": "str"},
        "decode": {"type": "bool"},
        "include_assignments": {"type": "bool", "default": True},
        "include_nested": {"type": "bool", "default": False},
        "reveal_secrets": {"type": "bool", "default": False},
    })
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True, mutually_exclusive=[("uuid", "name")])
    p = module.params
    client = client_from_module(module)
    api = PolicyApi(client)
    decode = p["decode"] if p["decode"] is not None else bool(p["uuid"] or p["name"])
    cache: t.Dict[str, GroupIndex] = {}

    def groups() -> GroupIndex:
        if "index" not in cache:
            cache["index"] = GroupIndex(api.list_groups())
        return cache["index"]

    try:
        if p["uuid"]:
            one = api.get_policy(p["uuid"])
            found = [one] if one else []
        else:
            found = api.list_policies()
            if p["name"] is not None:
                found = [policy for policy in found if policy.get("displayName") == p["name"]]
            if decode:
                found = [api.full(policy) for policy in found]
        policies = [describe(api, policy, decode, p["include_assignments"], p["include_nested"], groups,
                             p["reveal_secrets"]) for policy in found]
    except EsetApiError as exc:
        module.fail_json(msg=str(exc), error=exc.to_dict(), api=api_summary(client))
    module.exit_json(changed=False, policies=policies, api=api_summary(client))


if __name__ == "__main__":
    main()
