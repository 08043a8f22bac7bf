# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: monitor_plan
short_description: Which hosts probe EPNS actively, and how often, so the fleet stays under a connection-rate cap
version_added: 0.1.0
author:
  - protectnet.epns contributors (@protectnet)
description:
  - Groups the hosts by egress, the pair of C(eset_public_ip) and the proxy in effect (C(eset_agent_proxy) of the
    protectnet.epns.eset_protect inventory, or O(proxies)), and makes one or two hosts of each egress sentinels that
    probe actively; every other host runs only the passive check of its agent's own connection.
  - A host without C(eset_public_ip) is an egress of its own, since nothing shows it shares a way out with another.
  - Derives the interval from the connections all active hosts open per run (2 ports per path, a path direct and one
    per proxy) so that runs plus holds stay under O(max_connections_per_second) for the whole fleet.
options:
  _input:
    description: C(hostvars) (or any mapping of host name to its variables).
    type: dict
    required: true
  hosts:
    description: The hosts to plan for, for example C(ansible_play_hosts_all).
    type: list
    elements: str
    required: true
  all_active:
    description: Every host probes actively (still under the cap, with a longer interval).
    type: bool
    default: false
  sentinels_per_egress:
    description: Active hosts per egress, 1 or 2.
    type: int
    default: 2
  proxies:
    description: Proxies every host probes through, instead of each host's C(eset_agent_proxy).
    type: list
    elements: str
  max_connections_per_second:
    description: The cap on the whole fleet's connections to EPNS per second, runs and holds together.
    type: float
    default: 1.0
  interval_minutes:
    description: The shortest interval between two runs of one host; the plan only lengthens it.
    type: int
    default: 15
  hold_every_minutes:
    description: How often a host holds one connection per port; lengthened when holds would take over half the cap.
    type: int
    default: 1440
  mqtt_every_minutes:
    description: How often a run goes as far as the MQTT CONNECT; never more often than the interval.
    type: int
    default: 60
"""

EXAMPLES = r"""
- name: Plan the monitor once for the play
  ansible.builtin.set_fact:
    epns_monitor_plan: "{{ hostvars | protectnet.epns.monitor_plan(ansible_play_hosts_all) }}"
  run_once: true
"""

RETURN = r"""
_value:
  description:
    - C(hosts) maps each host to C(active), C(egress), C(reason) and C(connections_per_run).
    - C(egresses) lists C(egress), C(hosts) and C(sentinels), largest first.
    - C(schedule) has C(interval_minutes), C(hold_every_minutes), C(mqtt_every_minutes), C(active_hosts),
      C(passive_hosts), C(connections_per_run), C(connections_per_second), C(max_connections_per_second) and
      C(arithmetic), the sum written out.
  type: dict
"""

import typing as t  # noqa: E402

from ansible.errors import AnsibleFilterError  # noqa: E402
from ansible_collections.protectnet.epns.plugins.plugin_utils._monitor_plan import (  # noqa: E402
    PlanError,
    RateSettings,
    plan_monitor,
)

# Only these variables are read: templating every host's variables would cost seconds at thousands of hosts.
FACTS = ("eset_public_ip", "eset_agent_proxy", "epns_probe_supported", "epns_host_support_skip")


def _facts(variables: t.Any) -> t.Dict[str, t.Any]:
    return {name: variables[name] for name in FACTS if name in variables}


def monitor_plan(hostvars: t.Mapping[str, t.Any], hosts: t.Sequence[str], all_active: bool = False,
                 sentinels_per_egress: int = 2, proxies: t.Optional[t.Sequence[str]] = None,
                 max_connections_per_second: float = 1.0, interval_minutes: int = 15,
                 hold_every_minutes: int = 1440, mqtt_every_minutes: int = 60) -> t.Dict[str, t.Any]:
    if isinstance(hosts, str) or not isinstance(hosts, t.Sequence):
        raise AnsibleFilterError(f"monitor_plan: hosts is {hosts!r}: give a list of host names")
    missing = [name for name in hosts if name not in hostvars]
    if missing:
        raise AnsibleFilterError(f"monitor_plan: no variables for {missing[:5]!r}: give host names of the inventory")
    settings = RateSettings(float(max_connections_per_second) if isinstance(max_connections_per_second, (int, float))
                            and not isinstance(max_connections_per_second, bool) else max_connections_per_second,
                            interval_minutes, hold_every_minutes, mqtt_every_minutes)
    try:
        plan = plan_monitor({name: _facts(hostvars[name]) for name in hosts}, all_active=bool(all_active),
                            per_egress=sentinels_per_egress, proxies=proxies, settings=settings)
    except PlanError as exc:
        raise AnsibleFilterError(f"monitor_plan: {exc}") from None
    return plan.as_dict()


class FilterModule:
    def filters(self) -> t.Dict[str, t.Callable[..., t.Any]]:
        return {"monitor_plan": monitor_plan}
