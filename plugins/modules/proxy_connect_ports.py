#!/usr/bin/python
# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: proxy_connect_ports
short_description: Let the HTTP proxy in front of the agents carry ESET's push notification service (EPNS)
version_added: 0.1.0
description:
  - Runs on the proxy host. Makes squid or Apache httpd (C(mod_proxy_connect), as in ESET's older Apache HTTP Proxy)
    allow HTTP C(CONNECT) from the agents' networks to EPNS (the name O(epns_host)) on port 8883, and reports - and on
    request raises - the idle and connection limits that cut long-lived tunnels.
  - "It widens nothing else: with the defaults it adds exactly one allow (CONNECT from O(allowed_sources) to
    O(epns_host) on 8883), and every other CONNECT - other hosts on 8883, anything on 443, hosts the site denies -
    gets the answer it got before. Port 443, EPNS's fallback, is left as the site has it unless listed in O(ports).
    ESET's published EPNS addresses are not added (they are not confirmed, and agents connect by name); list them in
    O(destinations) if wanted. Opening the ports to any host takes O(allow_connect_to_any_host=true)."
  - "A rule of the site that denies CONNECT to the EPNS name (squid: an C(http_access deny) with a C(dstdomain),
    C(dstdom_regex) or C(ssl::server_name) ACL that matches it; Apache: C(ProxyBlock), or a C(<Proxy>) /
    C(<ProxyMatch>) section about the EPNS name with C(Require all denied) or C(Require not)) keeps winning: the
    snippet then leaves its allow out, and RV(epns_denied_by) and a warning name the rule."
  - "Owns one snippet file (default: C(protectnet_epns.conf) next to the main configuration) and one marked
    C(include) line in the main file, and nothing else: the rest of C(squid.conf) or C(apache2.conf) is never
    rewritten. V(absent) removes both, which gives back the main file byte for byte."
  - "squid: the include goes before the first C(http_access) line, because http_access is first-match: Debian's
    C(http_access deny CONNECT !SSL_ports) would otherwise refuse 8883, and an authentication rule would ask EPNS for
    credentials it cannot give. The snippet adds prefixed ACLs and one C(http_access allow) for CONNECT from
    O(allowed_sources) to O(ports) and C(dstdomain -n) O(epns_host) (the name the agent wrote, never a reverse lookup
    of an address), plus one with C(dst) O(destinations) when given."
  - "Apache: the include goes at the end of the main file. C(AllowCONNECT) is server-wide and adds to the allowed
    ports (when none was set, Apache's default 443 563 is kept), so a port this run newly allows is first denied for
    every destination (C(Require all denied)); then a C(<ProxyMatch>) for O(epns_host) on O(ports) with
    C(AuthMerging Or) lets O(allowed_sources) through, on top of whatever the existing C(<Proxy>) rules allow there."
  - Every change is validated on a candidate copy first (C(squid -k parse), C(apachectl -t)), then again in place,
    then reloaded without dropping established tunnels (C(squid -k reconfigure), C(apachectl -k graceful)). Any
    failure puts the previous files back, so the running proxy keeps the configuration it had.
  - "ESET Bridge (Nginx-based, configured through its own ESET policy): V(eset_bridge) changes nothing and returns
    what is known and what to set by hand in RV(eset_bridge); this module never edits the Bridge's files."
author:
  - protectnet.epns contributors (@protectnet)
extends_documentation_fragment:
  - protectnet.epns._attributes
  - protectnet.epns._result
  - protectnet.epns._attributes.ACTIONGROUP_EPNS
attributes:
  check_mode:
    support: full
    details:
      - Check mode computes the same files and validates the candidate in a scratch directory; nothing under the
        proxy's configuration directory changes and nothing is reloaded.
  diff_mode:
    support: full
    details:
      - Shows the managed snippet and the main configuration file (the include block) before and after.
  action_group:
    support: full
options:
  state:
    description:
      - V(present) writes the snippet and the include line; V(absent) removes both and reloads.
    type: str
    choices: [present, absent]
    default: present
  proxy:
    description:
      - Which proxy runs here. V(auto) takes the only one installed, or the only one running when both are.
      - A proxy that is not installed fails without changes; so does one that is not running, unless O(reload=false).
    type: str
    choices: [auto, squid, apache, eset_bridge]
    default: auto
  ports:
    description:
      - The EPNS ports CONNECT must reach, 1-65535.
      - The default leaves 443 as the site has it (most proxies already allow CONNECT to 443). List 443 to let
        O(allowed_sources) reach EPNS on 443 ahead of the site's own rules (squid) or on top of them (Apache).
    type: list
    elements: int
    default: [8883]
  allowed_sources:
    description:
      - The agents' networks (IPv4/IPv6 addresses or CIDRs) allowed to CONNECT to O(ports). Required with
        V(present). A CIDR with host bits set is refused with the network it probably meant.
    type: list
    elements: str
    default: []
  allow_connect_to_any_host:
    description:
      - "B(Wider opening): let O(allowed_sources) CONNECT to O(ports) on B(any) host, not only to EPNS - ahead of
        every rule of the site on squid (its denies, block lists and authentication included), on top of the
        C(<Proxy>) rules on Apache. Only for a proxy that serves nothing but the agents."
      - V(false) (the default) allows O(epns_host) and O(destinations) only.
    type: bool
    default: false
  restrict_to_epns:
    description:
      - Deprecated, without effect - CONNECT goes to EPNS only unless O(allow_connect_to_any_host=true).
      - V(false), which used to open O(ports) to any host, fails with a pointer to O(allow_connect_to_any_host).
    type: bool
  epns_host:
    description:
      - The EPNS name the agents' networks may CONNECT to. An empty string allows O(destinations) only.
    type: str
    default: epns.eset.com
  destinations:
    description:
      - EPNS addresses or CIDRs also allowed, besides O(epns_host). None by default - agents connect to EPNS by
        name, and ESET's published address list is not confirmed and changes over time.
      - squid matches the address it connects to (C(dst)); Apache only matches a CONNECT target written as that
        address, so on Apache (also when O(proxy=auto) finds Apache) a network is refused - list single addresses.
    type: list
    elements: str
    default: []
  eset_server:
    description:
      - The ESET PROTECT server (name or address, as the agents were installed with it) that the agents replicate to
        after a wake-up call. Given, O(allowed_sources) may also CONNECT to it on O(eset_server_port), and to nothing
        more - the same rules as for EPNS (the site's own denies of that server still win, listed in
        RV(eset_server_denied_by)); also with O(allow_connect_to_any_host), which concerns O(ports) only.
      - squid matches a name as written (C(dstdomain -n)) and an address with C(dst); Apache adds the port to
        C(AllowCONNECT), denies it for every other destination, and allows the server on it.
      - Empty (the default) opens nothing for the server.
    type: str
    default: ""
  eset_server_port:
    description: The ESET PROTECT server's agent port, with O(eset_server).
    type: int
    default: 2222
  raise_idle_timeouts:
    description:
      - Raise the limits that cut long-lived tunnels to at least O(idle_timeout) and O(connection_lifetime) when they
        are lower (never lowers them). squid - C(read_timeout) and C(client_lifetime); Apache - C(Timeout) and
        C(ProxyTimeout). Both proxies apply these to every connection, not only EPNS tunnels; RV(limits_tradeoff)
        says what that costs.
    type: bool
    default: false
  idle_timeout:
    description:
      - Seconds a tunnel may stay silent before the proxy closes it, with O(raise_idle_timeouts) (60 to 31536000).
    type: int
    default: 3600
  connection_lifetime:
    description: Seconds a tunnel may stay open in all, with O(raise_idle_timeouts) (squid only; 3600 to 31536000).
    type: int
    default: 604800
  config_path:
    description:
      - The proxy's main configuration file. Default - the first that exists of C(/etc/squid/squid.conf),
        C(/etc/squid3/squid.conf) (squid); C(/etc/apache2/apache2.conf), C(/etc/httpd/conf/httpd.conf) (Apache).
    type: path
  snippet_path:
    description: The managed snippet. Default - C(protectnet_epns.conf) in the directory of O(config_path).
    type: path
  extra_directives:
    description:
      - More lines appended to the managed snippet as they are, for settings this module does not manage. They are
        validated with the rest; a line the proxy rejects fails the run without changes.
    type: list
    elements: str
    default: []
  reload:
    description:
      - Reload the proxy after a change (gracefully; established tunnels stay open). V(false) only writes the
        validated files; the proxy then need not be running.
    type: bool
    default: true
notes:
  - squid's C(read_timeout) and C(client_lifetime) and Apache's C(Timeout) are global; a directive read after the
    managed snippet (squid) overrides it, which the module reports as a warning.
  - An Apache C(<Proxy>) section inside a C(<VirtualHost>) is merged after the server-wide snippet and wins over it.
  - EPNS does not support proxy authentication; a proxy that requires it for the agents cannot carry EPNS.
  - Runs the Python standard library on the proxy host (Python 3.8+).
seealso:
  - module: protectnet.epns.epns_probe
  - module: protectnet.epns.epns_firewall
  - name: squid http_access
    description: First-match access rules.
    link: https://www.squid-cache.org/Doc/config/http_access/
  - name: Apache mod_proxy_connect
    description: AllowCONNECT.
    link: https://httpd.apache.org/docs/2.4/mod/mod_proxy_connect.html
"""

EXAMPLES = r"""
- name: Let the agents' networks CONNECT to EPNS on 8883 through this squid (or Apache), and to nothing else
  protectnet.epns.proxy_connect_ports:
    allowed_sources: [10.20.0.0/16, "2001:db8:20::/48"]

- name: The same, and let the agents replicate to their ESET PROTECT server through it after a wake-up call
  protectnet.epns.proxy_connect_ports:
    allowed_sources: [10.20.0.0/16]
    eset_server: protect.example.com
    eset_server_port: 2222

- name: The same, also to EPNS by address and on 443 ahead of the site's rules
  protectnet.epns.proxy_connect_ports:
    proxy: squid
    allowed_sources: [10.20.0.0/16]
    ports: [8883, 443]
    destinations: [91.228.165.144/28]

- name: Apache (ESET's older Apache HTTP Proxy), raising the idle limit for long-lived tunnels
  protectnet.epns.proxy_connect_ports:
    proxy: apache
    allowed_sources: [10.20.0.0/16]
    raise_idle_timeouts: true
    idle_timeout: 7200

- name: What to set in ESET Bridge's policy
  protectnet.epns.proxy_connect_ports:
    proxy: eset_bridge
    allowed_sources: [10.20.0.0/16]

- name: Remove the managed snippet and include line
  protectnet.epns.proxy_connect_ports:
    state: absent
"""

RETURN = r"""
proxy:
  description: The proxy configured (V(squid), V(apache) or V(eset_bridge)).
  returned: always
  type: str
proxy_reason:
  description: Why this proxy (for O(proxy=auto), what was found).
  returned: always
  type: str
  sample: "auto: squid is the only supported proxy installed"
running:
  description: Whether the proxy was running.
  returned: unless eset_bridge
  type: bool
config_path:
  description: The main configuration file.
  returned: unless eset_bridge
  type: str
snippet_path:
  description: The managed snippet file.
  returned: unless eset_bridge
  type: str
include_line:
  description: The include line in the marked block (C(null) with V(absent)).
  returned: unless eset_bridge
  type: str
snippet:
  description: The managed snippet's content after the run (C(null) with V(absent)).
  returned: unless eset_bridge
  type: str
limits:
  description:
    - The idle and lifetime limits that apply to CONNECT tunnels before the run, each with C(name), C(value),
      C(seconds), C(human), C(source) (C(file:line) or C(default)), C(kind) (V(idle) or V(lifetime)) and
      C(explanation). Apache also reports C(effective_idle), the lower of C(Timeout) and C(ProxyTimeout).
  returned: unless eset_bridge
  type: list
  elements: dict
  sample: [{"name": "read_timeout", "value": "15 minutes", "seconds": 900, "human": "15 minutes",
            "source": "default", "kind": "idle", "explanation": "..."}]
limits_after:
  description: The same limits after the run (or as they would be, in check mode).
  returned: unless eset_bridge
  type: list
  elements: dict
limits_tradeoff:
  description: What raising the limits costs on this proxy.
  returned: unless eset_bridge
  type: str
epns_denied_by:
  description:
    - "The site's own rules that deny CONNECT to O(epns_host), each as C(file:line: rule). They keep winning - the
      snippet then has no allow, and the agents cannot reach EPNS through this proxy until the rule is changed."
  returned: unless eset_bridge
  type: list
  elements: str
  sample: ["/etc/squid/squid.conf:31: http_access deny no_eset"]
eset_server_denied_by:
  description:
    - The site's own rules that deny CONNECT to O(eset_server) (empty without it). They keep winning - the snippet
      then has no allow for the server.
  returned: unless eset_bridge
  type: list
  elements: str
validated:
  description: Whether a changed configuration was validated (always before any file is touched).
  returned: unless eset_bridge
  type: bool
reloaded:
  description: Whether the proxy was reloaded.
  returned: unless eset_bridge
  type: bool
before:
  description:
    - The managed part of the proxy's configuration before the run - C(snippet) (the managed snippet's content,
      C(null) when there was none) and C(included) (the main file carries the marked include block). C(null) with
      O(proxy=eset_bridge).
  returned: always
  type: dict
  sample: {snippet: null, included: false}
after:
  description:
    - The same after the run (as it would be, in check mode). The commands (C(commands)) are the validation of the
      new files in a scratch directory (in check mode too), then, on a change, the validation in place and the reload.
  returned: always
  type: dict
eset_bridge:
  description: With O(proxy=eset_bridge) - C(known) (facts, with their status) and C(manual_steps).
  returned: when proxy is eset_bridge
  type: dict
manual:
  description: V(true) when the result is advice only (ESET Bridge).
  returned: when proxy is eset_bridge
  type: bool
"""

import typing as t  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._python_floor import require_supported_python  # noqa: E402

require_supported_python()  # first: the imports below need Python 3.8 and would fail on 3.6 without saying why
from ansible_collections.protectnet.epns.plugins.module_utils._epns import HOST, PRIMARY_PORT  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._host._run import ModuleRunner  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._proxy._engine import ApplyError, run  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._proxy._model import (  # noqa: E402
    ProxyError,
    ProxyRequest,
    check_directives,
    check_eset_server,
    check_host,
    check_networks,
    check_port,
    check_ports,
    check_seconds,
)
from ansible_collections.protectnet.epns.plugins.module_utils._result import change_result, exit_changed  # noqa: E402


def argument_spec() -> t.Dict[str, t.Any]:
    return dict(
        state=dict(type="str", choices=["present", "absent"], default="present"),
        proxy=dict(type="str", choices=["auto", "squid", "apache", "eset_bridge"], default="auto"),
        ports=dict(type="list", elements="int", default=[PRIMARY_PORT]),
        allowed_sources=dict(type="list", elements="str", default=[]),
        allow_connect_to_any_host=dict(type="bool", default=False),
        restrict_to_epns=dict(type="bool", removed_in_version="1.0.0", removed_from_collection="protectnet.epns"),
        epns_host=dict(type="str", default=HOST),
        destinations=dict(type="list", elements="str", default=[]),
        eset_server=dict(type="str", default=""),
        eset_server_port=dict(type="int", default=2222),
        raise_idle_timeouts=dict(type="bool", default=False),
        idle_timeout=dict(type="int", default=3600),
        connection_lifetime=dict(type="int", default=604800),
        config_path=dict(type="path"),
        snippet_path=dict(type="path"),
        extra_directives=dict(type="list", elements="str", default=[]),
        reload=dict(type="bool", default=True),
    )


def request_from(p: t.Mapping[str, t.Any]) -> ProxyRequest:
    present = p["state"] == "present"
    if present and not p["allowed_sources"]:
        raise ProxyError("allowed_sources is required with state=present: the agents' networks, as CIDRs")
    if p["restrict_to_epns"] is False:
        raise ProxyError("restrict_to_epns=false no longer opens the ports to any host (it now has no effect and "
                         "will be removed); set allow_connect_to_any_host=true if that wider opening is really meant")
    destinations = check_networks(p["destinations"], "destinations")
    epns_host = check_host(p["epns_host"]) if p["epns_host"].strip() else ""
    any_host = p["allow_connect_to_any_host"]
    if present and not any_host and not (epns_host or destinations):
        raise ProxyError("epns_host is empty and destinations lists nothing: there is no EPNS destination to allow")
    if destinations and any_host:
        raise ProxyError("destinations do not apply with allow_connect_to_any_host=true, which allows every host")
    return ProxyRequest(
        state=p["state"], proxy=p["proxy"], ports=check_ports(p["ports"]),
        allowed_sources=check_networks(p["allowed_sources"], "allowed_sources"),
        allow_connect_to_any_host=any_host, epns_host=epns_host, destinations=destinations,
        eset_server=check_eset_server(p["eset_server"]),
        eset_server_port=check_port(p["eset_server_port"], "eset_server_port"),
        raise_idle_timeouts=p["raise_idle_timeouts"],
        idle_timeout=check_seconds(p["idle_timeout"], "idle_timeout", 60),
        connection_lifetime=check_seconds(p["connection_lifetime"], "connection_lifetime", 3600),
        config_path=p["config_path"], snippet_path=p["snippet_path"],
        extra_directives=check_directives(p["extra_directives"]), reload=p["reload"])


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    try:
        result = run(request_from(module.params), ModuleRunner(module), module.check_mode)
    except ApplyError as exc:
        module.fail_json(msg=str(exc), restored=exc.restored, changed=not exc.restored)
    except ProxyError as exc:
        module.fail_json(msg=str(exc), changed=False)
    exit_changed(module, change_result(**result))


if __name__ == "__main__":
    main()
