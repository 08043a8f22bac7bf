#!/usr/bin/python
# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: epns_agent_connection
short_description: Show whether the ESET Management Agent itself is connected to EPNS right now, passively
version_added: 0.1.0
description:
  - Reads, without sending anything, which established TCP connections the ESET Management Agent process
    (C(ERAAgent)) holds right now, from the kernel's socket tables (C(/proc/net/tcp), C(/proc/net/tcp6)) and the
    process's file descriptors (C(/proc/PID/fd)).
  - Each connection is classified by its remote end; V(epns) is an EPNS address (O(epns_addresses), else what
    O(epns_host) resolves to on this host) on one of O(ports); V(proxy) is one of O(proxies); anything else is
    V(other) (the ESET PROTECT server, repositories).
  - Through a proxy, only the connection to the proxy shows; the port the agent asked the proxy for (8883 or 443)
    travels inside the tunnel's CONNECT request and cannot be seen afterwards, so RV(summary.port) is then null.
  - "Reading another user's file descriptors needs root (or the agent's own user). Without it the result says
    RV(summary.state=cannot_see) with the reason; that is not an error."
  - "How long a connection has been up is not kept by the kernel in C(/proc). RV(connections[].up_seconds) is an
    upper bound: the age of the process that holds the socket, which a connection cannot exceed."
  - Uses only the Python standard library on the managed host. Linux only.
author:
  - protectnet.epns contributors (@protectnet)
extends_documentation_fragment:
  - protectnet.epns._attributes
  - protectnet.epns._attributes.INFO_MODULE
options:
  process_names:
    description:
      - Names of the agent's process, matched against its C(comm) (the kernel's 15-character name) and the base
        name of its C(argv[0]).
    type: list
    elements: str
    default: [ERAAgent]
  epns_host:
    description: The EPNS host name, resolved on the managed host when O(epns_addresses) is not given.
    type: str
    default: epns.eset.com
  epns_addresses:
    description:
      - The EPNS addresses (IPv4 or IPv6). Not given, or empty, means the addresses O(epns_host) resolves to here.
    type: list
    elements: str
  proxies:
    description:
      - The agent's HTTP proxies, each as C(host:port), C([v6]:port) or C(http://host:port). Names are resolved on
        the managed host. A proxy with a user name or password is refused (EPNS cannot authenticate to a proxy).
    type: list
    elements: str
    default: []
  ports:
    description: The EPNS ports; a connection to an EPNS address on another port counts as V(other).
    type: list
    elements: int
    default: [8883, 443]
notes:
  - The role C(protectnet.epns.epns_verify) runs this module before its probe (C(epns_verify_agent_connection)) and
    the fleet report shows the summary per host. See docs/agent-connection.md.
seealso:
  - module: protectnet.epns.epns_probe
  - name: proc(5)
    description: C(/proc/net/tcp), C(/proc/PID/fd) and C(/proc/PID/stat).
    link: https://man7.org/linux/man-pages/man5/proc.5.html
"""

EXAMPLES = r"""
- name: Is the agent itself on EPNS right now?
  protectnet.epns.epns_agent_connection:
  become: true
  register: agent

- name: The agent behind its proxy, EPNS addresses as the firewall allows them
  protectnet.epns.epns_agent_connection:
    proxies: ["http://proxy.example.com:3128"]
    epns_addresses: [203.0.113.10, 2001:db8::10]
  become: true

- name: Say so when the agent falls back to 443
  ansible.builtin.debug:
    msg: "{{ agent.message }}"
  when: agent.summary.port == 443
"""

RETURN = r"""
visible:
  description: Whether the agent's sockets could be read; false only with RV(summary.state=cannot_see).
  returned: always
  type: bool
  sample: true
reason:
  description: Why the sockets could not (all) be read, with the fix; null when they could.
  returned: always
  type: str
  sample: "cannot read the file descriptors of ERAAgent (pid 812): /proc/812/fd: Permission denied; run the check
    as root (become: true) or as the agent's own user"
processes:
  description: The agent's processes found.
  returned: always
  type: list
  elements: dict
  contains:
    pid:
      description: Process id.
      type: int
      returned: always
    name:
      description: The name of O(process_names) it matched.
      type: str
      returned: always
  sample: [{pid: 812, name: ERAAgent}]
connections:
  description: Every established TCP connection the agent's processes hold.
  returned: always
  type: list
  elements: dict
  contains:
    pid:
      description: The process holding it.
      type: int
      returned: always
    local:
      description: "Local end, C(address:port) (C([v6]:port) for IPv6)."
      type: str
      returned: always
    remote:
      description: Remote address (an IPv4-mapped IPv6 peer as IPv4).
      type: str
      returned: always
    remote_port:
      description: Remote port.
      type: int
      returned: always
    target:
      description: What the remote end is.
      type: str
      returned: always
      choices: [epns, proxy, other]
    proxy:
      description: "The proxy of O(proxies) it is, as C(host:port); null unless V(proxy)."
      type: str
      returned: always
    since:
      description:
        - Epoch seconds the holding process started (from C(/proc/PID/stat) and the boot time); the connection
          was opened at this time or later. Null when the kernel did not say.
      type: float
      returned: always
    up_seconds:
      description: Seconds since RV(connections[].since), an upper bound on how long the connection has been up.
      type: int
      returned: always
  sample:
    - {pid: 812, local: "198.18.0.11:40112", remote: 198.18.1.10, remote_port: 8883, target: epns, proxy: null,
       since: 1764748800.25, up_seconds: 3600}
summary:
  description: The one line for the report.
  returned: always
  type: dict
  contains:
    state:
      description:
        - V(connected) (a connection to EPNS or to a proxy), V(not_connected) (the agent runs, holds neither),
          V(no_agent) (no such process), V(cannot_see) (not allowed to look).
      type: str
      returned: always
      choices: [connected, not_connected, no_agent, cannot_see]
    port:
      description:
        - The EPNS port of the chosen connection (direct to EPNS before a proxy, then in the order of O(ports)).
        - Null via a proxy, where the port asked for is inside the tunnel.
      type: int
      returned: always
    via:
      description: How the chosen connection goes; null unless connected.
      type: str
      returned: always
      choices: [direct, proxy]
    up_seconds:
      description: That connection's RV(connections[].up_seconds).
      type: int
      returned: always
  sample: {state: connected, port: 443, via: direct, up_seconds: 3600}
message:
  description: The summary in words.
  returned: always
  type: str
  sample: the agent itself is on 443 direct to EPNS (198.18.1.10), up at most 1h (the agent process's age)
epns_addresses:
  description: The EPNS addresses compared against (given or resolved here); empty when the name did not resolve.
  returned: always
  type: list
  elements: str
  sample: [198.18.1.10, 2001:db8:0:1::10]
proxies:
  description: The proxies compared against, parsed.
  returned: always
  type: list
  elements: dict
  sample: [{host: proxy.lab, port: 3128}]
"""

import typing as t  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._python_floor import require_supported_python  # noqa: E402

require_supported_python()  # first: the imports below need Python 3.8 and would fail on 3.6 without saying why
from ansible_collections.protectnet.epns.plugins.module_utils._agent import AgentConfigError, observe  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._epns import (  # noqa: E402
    FALLBACK_PORT,
    HOST,
    PRIMARY_PORT,
)


def argument_spec() -> t.Dict[str, t.Any]:
    return dict(
        process_names=dict(type="list", elements="str", default=["ERAAgent"]),
        epns_host=dict(type="str", default=HOST),
        epns_addresses=dict(type="list", elements="str"),
        proxies=dict(type="list", elements="str", default=[]),
        ports=dict(type="list", elements="int", default=[PRIMARY_PORT, FALLBACK_PORT]),
    )


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    try:
        observation = observe(params["process_names"], params["epns_addresses"], params["proxies"], params["ports"],
                              epns_host=params["epns_host"])
    except AgentConfigError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **observation.as_result())


if __name__ == "__main__":
    main()
