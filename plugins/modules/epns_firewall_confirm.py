#!/usr/bin/python
# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: epns_firewall_confirm
short_description: Keep a firewall change made by epns_firewall with rollback_seconds, before it reverts itself
version_added: 0.1.0
description:
  - M(protectnet.epns.epns_firewall) with O(protectnet.epns.epns_firewall#module:rollback_seconds) applies the change
    and starts a watchdog on the host that restores the previous state at the deadline. This module stops that
    watchdog and then writes the files the change had pending (persistence, refresh job).
  - The action plugin of M(protectnet.epns.epns_firewall) runs it by itself over a fresh connection, which proves
    that new management sessions still get through. Call it directly only to confirm from another play or tool.
  - Fails, saying the change was rolled back, when the deadline has passed.
  - Fails with RV(kept=true) when the change was kept but a command that completes it (enabling or disabling the
    refresh timer) exits with an error; the message names the command and its output.
author:
  - protectnet.epns contributors (@protectnet)
extends_documentation_fragment:
  - protectnet.epns._attributes
  - protectnet.epns._result
attributes:
  check_mode:
    support: none
  diff_mode:
    support: none
notes:
  - Not in the C(protectnet.epns.epns) action group, so group defaults meant for the other modules do not reach it.
options:
  token:
    description: The RV(protectnet.epns.epns_firewall#module:rollback.token) of the change to keep.
    type: str
    required: true
seealso:
  - module: protectnet.epns.epns_firewall
"""

EXAMPLES = r"""
- name: Change the firewall without the action plugin's confirmation (for example from another tool)
  protectnet.epns.epns_firewall:
    rollback_seconds: 60
  register: fw

- name: Confirm it from here
  protectnet.epns.epns_firewall_confirm:
    token: "{{ fw.rollback.token }}"
  when: fw.rollback
"""

RETURN = r"""
state:
  description: V(confirmed).
  returned: success
  type: str
token:
  description: The confirmed change's token.
  returned: success
  type: str
before:
  description: The pending change before the run, C(token) and C(state) (V(armed)).
  returned: success
  type: dict
  sample: {token: 20260101T120000-0f3c2a9e, state: armed}
after:
  description: The same after the run, C(state) V(confirmed).
  returned: success
  type: dict
  sample: {token: 20260101T120000-0f3c2a9e, state: confirmed}
kept:
  description: V(true) when the change was kept but completing it failed (see the message).
  returned: failure after the change was kept
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._python_floor import require_supported_python  # noqa: E402

require_supported_python()  # first: the imports below need Python 3.8 and would fail on 3.6 without saying why
from ansible_collections.protectnet.epns.plugins.module_utils._firewall._model import FirewallError  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._firewall._rollback import (  # noqa: E402
    KeptButIncomplete,
    confirm,
)
from ansible_collections.protectnet.epns.plugins.module_utils._result import change_result, exit_changed  # noqa: E402


def main() -> None:
    # The token names a pending change on the host and is in every result: not a secret.
    module = AnsibleModule(argument_spec=dict(token=dict(type="str", required=True, no_log=False)),
                           supports_check_mode=False)
    try:
        result = confirm(module.params["token"])
    except KeptButIncomplete as exc:
        module.fail_json(msg=str(exc), kept=True, rolled_back=False)
    except FirewallError as exc:
        module.fail_json(msg=str(exc), rolled_back="too late" in str(exc))
    except OSError as exc:
        module.fail_json(msg=f"the change was kept, but writing its files failed: {exc}")
    token = module.params["token"]
    result.update(before={"token": token, "state": "armed"}, after={"token": token, "state": result["state"]})
    exit_changed(module, change_result(True, **result))


if __name__ == "__main__":
    main()
