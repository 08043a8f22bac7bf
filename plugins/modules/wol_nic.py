#!/usr/bin/python
# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: wol_nic
short_description: Report and enable Wake-on-LAN (magic packet) on a network interface
version_added: 0.1.0
description:
  - Reads the interface's Wake-on-LAN support and setting with C(ethtool) and, with O(enable=true), turns on
    wake by magic packet (C(ethtool -s IF wol g)) and makes it persistent the way the host configures its network,
    with NetworkManager (C(802-3-ethernet.wake-on-lan magic) on the device's connection) or a systemd C(.link) file
    (C(/etc/systemd/network/50-protectnet-wol-IF.link), C(WakeOnLan=magic)); with plain C(ethtool) the setting
    lasts until the next reboot.
  - A NIC without Wake-on-LAN support (virtual interfaces such as veth) is reported with RV(supported=false) and a
    reason; that is not an error.
author:
  - protectnet.epns contributors (@protectnet)
extends_documentation_fragment:
  - protectnet.epns._attributes
  - protectnet.epns._result
attributes:
  check_mode:
    support: full
    details:
      - Check mode reads the NIC and says what it would run.
  diff_mode:
    support: full
    details:
      - The diff shows the C(Wake-on) setting and whether it is persistent, before and after.
options:
  interface:
    description: The interface. Default is the interface of the default route.
    type: str
  enable:
    description: Enable wake by magic packet (otherwise only report).
    type: bool
    default: false
  method:
    description: How to make it persistent; V(auto) picks NetworkManager, then systemd-networkd, then plain ethtool.
    type: str
    choices: [auto, ethtool, networkmanager, systemd_link]
    default: auto
seealso:
  - module: protectnet.epns.wol_probe
  - name: ethtool(8)
    description: The C(wol) option of C(ethtool -s).
    link: https://man7.org/linux/man-pages/man8/ethtool.8.html
"""

EXAMPLES = r"""
- name: Report Wake-on-LAN on the agent's NIC
  protectnet.epns.wol_nic:
  register: nic

- name: Enable it where the hardware supports it
  protectnet.epns.wol_nic:
    enable: true
"""

RETURN = r"""
interface:
  description: The interface.
  returned: always
  type: str
  sample: eth0
addresses:
  description: The interface's global addresses with prefix (the role derives the agent subnets from them).
  returned: always
  type: list
  elements: str
  sample: [198.18.2.11/24, "2001:db8:0:2::11/64"]
mac:
  description: Its MAC address (what a magic packet for this machine carries).
  returned: always
  type: str
supported:
  description: Whether the NIC can wake on a magic packet; null when ethtool is missing.
  returned: always
  type: bool
supports:
  description: ethtool's C(Supports Wake-on) letters.
  returned: always
  type: str
  sample: pumbg
wake_on:
  description: ethtool's C(Wake-on) letters after the run.
  returned: always
  type: str
  sample: g
wake_on_modes:
  description: The same letters spelled out.
  returned: always
  type: list
  elements: str
enabled:
  description: Wake by magic packet is on (or would be, in check mode).
  returned: always
  type: bool
method:
  description: How it is made persistent.
  returned: always
  type: str
  sample: networkmanager
persistent:
  description: The persistent setting is in place; null with plain ethtool.
  returned: always
  type: bool
reason:
  description: Why it is not supported (empty when it is).
  returned: always
  type: str
before:
  description: What was found before the run, C(wake_on) and C(persistent).
  returned: always
  type: dict
  sample: {wake_on: d, persistent: false}
after:
  description: The same after the run (as it would be, in check mode).
  returned: always
  type: dict
  sample: {wake_on: g, persistent: true}
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._python_floor import require_supported_python  # noqa: E402

require_supported_python()  # first: the imports below need Python 3.8 and would fail on 3.6 without saying why
from ansible_collections.protectnet.epns.plugins.module_utils._host._run import ModuleRunner  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._result import change_result, exit_changed  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._wol import _nic, _routes  # noqa: E402


def main() -> None:
    module = AnsibleModule(argument_spec={
        "interface": {"type": "str"},
        "enable": {"type": "bool", "default": False},
        "method": {"type": "str", "choices": ["auto", "ethtool", "networkmanager", "systemd_link"], "default": "auto"},
    }, supports_check_mode=True)
    runner = ModuleRunner(module)
    interface = module.params["interface"] or _routes.default_interface(runner)
    if not interface:
        module.fail_json(msg="no interface given and the host has no default route: set interface")
        return
    try:
        _nic.check_interface(interface)
        result = _nic.run(runner, interface, module.params["enable"], module.params["method"], module.check_mode)
    except (_nic.NicError, OSError) as exc:
        module.fail_json(msg=str(exc), interface=interface)
        raise
    result["diff"] = {"before": _nic.describe(interface, result["before"], result["method"]),
                      "after": _nic.describe(interface, result, result["method"])}
    exit_changed(module, change_result(**result))


if __name__ == "__main__":
    main()
