# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""What the inventory reads for ``eset_agent_proxy``, in the fewest requests, and the settings map it decodes with.

Requests on top of the device and group lists (``L`` the deployment's page limit):

* the policy list: ``ceil(policies / L)`` pages, plus one ``GET /v2/policies/{uuid}`` per policy whose list entry
  came without its features (the emulator and, by the spec, the server send them);
* the assignments of the agent policies: ``ceil(assignments / L)`` pages per ``CHUNK`` agent policies
  (``policyUuids`` repeated in one query), none when there is no agent policy;
* the members of each group that is the target of an agent policy and is on no listed device's static path (a
  dynamic group, ``GET /v1/device_groups/{uuid}/devices``): ``ceil(members / L)`` pages each, at least one.
"""
from __future__ import annotations

import typing as t
from urllib.parse import quote

from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._client import EsetClient
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._resources import (
    DEVICES,
    POLICY,
    GroupIndex,
    PolicyApi,
)
from ansible_collections.protectnet.epns.plugins.module_utils._eset_policy._effective import (
    AgentPolicies,
    agent_policy_uuids,
    dynamic_candidates,
)
from ansible_collections.protectnet.epns.plugins.module_utils._eset_policy._settings_map import (
    MapError,
    build_map,
    load_settings_file,
)

# Agent policies per assignment query: keeps the URL well under common 8 KiB limits (a uuid is 36 characters).
CHUNK = 50
SECTION = "agent_policy"  # the section of the calibration overrides file that holds this map


def settings_map(inline: t.Optional[t.Mapping[str, t.Any]], path: t.Optional[str]) -> t.Dict[str, t.Any]:
    """The decoder's map: ``DEFAULT_MAP``, the file's keys over it, ``inline``'s over those (as agent_proxy_policy
    merges its two options); ValueError names the bad value."""
    override: t.Dict[str, t.Any] = {}
    try:
        if path:
            # a bare map file, or the calibration overrides file (its agent_policy section)
            override.update(load_settings_file(path, SECTION))
        if inline is not None and not isinstance(inline, t.Mapping):
            raise MapError(f"settings_map must be a mapping (the shape of DEFAULT_MAP), got {inline!r}")
        override.update(inline or {})
        return build_map(override)
    except MapError as exc:
        raise ValueError(str(exc)) from None


def fetch(client: EsetClient, devices: t.Sequence[t.Mapping[str, t.Any]], groups: t.Sequence[t.Mapping[str, t.Any]],
          mapping: t.Mapping[str, t.Any], page_size: int, warn: t.Callable[[str], None]) -> t.Dict[str, t.Any]:
    """``{device uuid: eset_agent_proxy}`` of every listed device.

    Only this result is cached, never the policies: their data may hold the admin's proxy password."""
    api = PolicyApi(client)
    listed = client.paginate(POLICY, "/v2/policies", "policies", page_size=page_size)
    policies = [api.full(p) for p in listed]
    agent = agent_policy_uuids(policies, mapping)
    assignments: t.List[t.Dict[str, t.Any]] = []
    for start in range(0, len(agent), CHUNK):
        chunk = agent[start:start + CHUNK]
        found = client.paginate(POLICY, "/v2/policy-assignments", "assignments", {"policyUuids": chunk},
                                page_size=page_size)
        assignments += [a for a in found if a.get("policyUuid") in chunk]
    members: t.Dict[str, t.List[str]] = {}
    for group in dynamic_candidates(assignments, GroupIndex(groups), devices):
        found = client.paginate(DEVICES, f"/v1/device_groups/{quote(group, safe='')}/devices", "devices",
                                page_size=page_size)
        members[group] = [str(d.get("uuid")) for d in found if d.get("uuid")]
    model = AgentPolicies(policies, assignments, groups, members, mapping, warn)
    return {str(d.get("uuid")): model.proxy(d) for d in devices}
