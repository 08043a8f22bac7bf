#!/usr/bin/python
# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: epns_monitor_info
short_description: Read what the EPNS monitor last saw on this host, without probing
version_added: 0.1.0
description:
  - Reads the state directory of the runner that M(protectnet.epns.epns_monitor_runner) installs (the role
    C(protectnet.epns.epns_monitor)) - when it last ran, in which mode, its verdict, and per path the last time it
    worked, the longest hold it survived and whether the last hold was cut while idle.
  - Sends nothing. The fleet report uses it for "last seen working" beside a fresh probe.
  - A host without the monitor returns RV(installed=false); that is not an error.
  - Uses only the Python standard library on the managed host.
author:
  - protectnet.epns contributors (@protectnet)
extends_documentation_fragment:
  - protectnet.epns._attributes
  - protectnet.epns._attributes.INFO_MODULE
options:
  state_dir:
    description:
      - The runner's state directory, as given to
        O(protectnet.epns.epns_monitor_runner#module:state_dir).
      - It is readable by root and the monitor's user only, so run this with C(become=true).
    type: path
    default: /var/lib/protectnet-epns
seealso:
  - module: protectnet.epns.epns_monitor_runner
  - module: protectnet.epns.epns_probe
"""

EXAMPLES = r"""
- name: When did EPNS last work from here?
  protectnet.epns.epns_monitor_info:
  become: true
  register: monitor

- name: Say it
  ansible.builtin.debug:
    msg: "last seen working {{ '%Y-%m-%d %H:%M' | strftime(monitor.last_working) }}"
  when: monitor.last_working
"""

RETURN = r"""
installed:
  description: Whether the monitor's state was found in O(state_dir).
  returned: always
  type: bool
readable:
  description: Whether O(state_dir) could be read; false means RV(reason) says why.
  returned: always
  type: bool
reason:
  description: Why the state could not be read, with the fix; null otherwise.
  returned: always
  type: str
state_dir:
  description: The directory read.
  returned: always
  type: str
last_run:
  description: Epoch seconds the last recorded run ended; null when none is recorded.
  returned: always
  type: float
last_mode:
  description: What the last run did.
  returned: always
  type: str
  choices: [tcp_tls, mqtt, hold, passive]
last_verdict:
  description: The last run's verdict; null after a passive run.
  returned: always
  type: str
last_working:
  description: Epoch seconds any path last worked; null when none ever did (or no run was recorded).
  returned: always
  type: float
paths:
  description: Per path what the runner remembers.
  returned: always
  type: list
  elements: dict
  contains:
    port: {description: The port., type: str, returned: always}
    via: {description: "V(direct) or V(proxy).", type: str, returned: always}
    proxy: {description: "The proxy as C(host:port); null for direct.", type: str, returned: always}
    last_success: {description: Epoch seconds it last worked; null if never., type: float, returned: always}
    hold_survived: {description: Seconds the last hold lasted; null before any hold., type: float, returned: always}
    idle_cut: {description: Whether the last hold was cut while idle., type: bool, returned: always}
  sample: [{port: "8883", via: direct, proxy: null, last_success: 1764748800.0, hold_survived: 900.0,
            idle_cut: false}]
runs_skipped_total:
  description: Runs skipped because an earlier one still held the lock.
  returned: always
  type: int
history_lines:
  description: How many results the history holds.
  returned: always
  type: int
"""

import typing as t  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._python_floor import require_supported_python  # noqa: E402

require_supported_python()  # first: the import below needs Python 3.8 and would fail on 3.6 without saying why
from ansible_collections.protectnet.epns.plugins.module_utils._monitor._last import last_seen  # noqa: E402

STATE_DIR = "/var/lib/protectnet-epns"


def argument_spec() -> t.Dict[str, t.Any]:
    return dict(state_dir=dict(type="path", default=STATE_DIR))


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    module.exit_json(changed=False, **last_seen(module.params["state_dir"]))


if __name__ == "__main__":
    main()
