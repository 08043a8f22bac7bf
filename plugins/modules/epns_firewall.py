#!/usr/bin/python
# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: epns_firewall
short_description: Open exactly the egress ESET's push notification service (EPNS) needs, on any host firewall
version_added: 0.2.0
description:
  - Allows outbound TCP from the managed host to EPNS (C(epns.eset.com), ports 8883 and 443 by default) in the host's
    own firewall, in one call, for IPv4 and IPv6 alike, and nothing else.
  - "Destinations: the addresses O(host) resolves to at run time with the managed host's own resolver (A and AAAA),
    plus O(extra_destinations). With O(via_proxy) the egress goes to the HTTP proxy instead (or as well, with
    O(also_direct))."
  - Addresses live in named sets (nftables sets, ipsets), so an address that resolves differently later is a set
    update, never a rebuild; the optional refresh job (O(refresh)) re-resolves and updates only those sets.
  - "Owns only its objects, each tagged C(protectnet_epns): it never flushes, reorders or rewrites anything else.
    V(absent) removes exactly what it added. Every change is atomic: a failure part-way leaves the previous state."
  - "nftables: its own table C(inet protectnet_epns). An accept there cannot override a drop in another table's base
    chain on the same hook, so for each foreign default-deny egress chain (a filter chain on the output or postrouting
    hook with policy drop, or ending in a drop/reject of everything) it adds a copy of its sets to that table and one
    tagged accept rule per set at the top of that chain. Nothing else is opened."
  - "iptables: a chain C(PROTECTNET_EPNS) in the filter table of iptables and ip6tables, jumped to from the top of
    C(OUTPUT), matching ipsets C(protectnet_epns_*) where the ipset tool works (one rule per network otherwise);
    the legacy and the nf_tables variants are both supported."
  - "firewalld (0.9 or later): a policy object C(protectnet_epns) from C(HOST) to C(ANY) (target C(CONTINUE), priority
    -32768, so it is evaluated before the host's own policies) with one rich rule per family and port accepting TCP to
    the ipsets C(protectnet_epns_<group>_v4)/C(_v6) (C(hash:net)). The objects are loaded as whole XML files through
    the permanent configuration and one C(firewall-cmd --reload) after C(--check-config) (established connections are
    kept); it never calls C(firewall-cmd --permanent), so no C(*.xml.old) files are left behind. An address change is
    a runtime ipset entry update, without a reload. A reload drops runtime-only changes that others made without
    C(--permanent) (as any firewalld reload does). Firewalld older than 0.9 (no policy objects) gets direct rules
    instead (O(firewalld_mode))."
  - "ufw: one C(allow out) rule per network, per family and group, for all of the group's ports
    (C(ufw allow out to 198.18.1.10/32 port 443,8883 proto tcp comment 'protectnet_epns epns ipv4 tcp 443,8883')),
    IPv4 and IPv6. ufw has no address sets, so an address change deletes and adds only the affected rules (adds
    first). Each rule is one C(ufw) call with its undo; a failure part-way undoes the calls already made. The rules
    are appended to ufw's user rules, so an explicit C(deny out) rule of the host's that matches EPNS earlier wins."
  - A firewalld whose daemon is stopped, or an inactive ufw, fails without changes (it is installed but not usable).
  - With O(rollback_seconds) the change reverts by itself unless it is confirmed over a fresh connection
    (the action plugin does that), so a mistake cannot lock out the management session.
author:
  - protectnet.epns contributors (@protectnet)
extends_documentation_fragment:
  - protectnet.epns._attributes
  - protectnet.epns._attributes.ACTIONGROUP_EPNS
  - protectnet.epns._result
attributes:
  check_mode:
    support: full
    details:
      - Check mode computes the same diff and command plan as a real run and changes nothing (read-only commands only).
  diff_mode:
    support: full
    details:
      - Shows the owned sets, addresses and rules before and after, and every file it writes or removes.
  action_group:
    support: full
options:
  state:
    description:
      - V(present) opens the egress; V(absent) removes every object this module created (runtime, persisted files and
        the refresh job) and leaves the ruleset as it found it.
    type: str
    choices: [present, absent]
    default: present
  backend:
    description:
      - Which firewall to configure. V(auto) picks the one in use and says which and why in RV(backend_reason) -
        a running firewalld or ufw first, then the backend that already holds the EPNS rules, then the one that
        carries a default-deny egress, then the one with rules; on a host without any, nftables, else iptables.
      - A backend that is not installed, or installed but not running (firewalld daemon stopped, ufw inactive),
        fails without changes.
      - V(nftables) and V(iptables) - see the description; V(firewalld) - a policy object and ipsets (firewalld 0.9
        or later), or direct rules (O(firewalld_mode)); V(ufw) - tagged C(allow out) rules.
      - A run manages the chosen backend only. To move a host to another backend, run O(state=absent) with the old
        one first; otherwise its objects stay.
    type: str
    choices: [auto, nftables, firewalld, iptables, ufw]
    default: auto
  host:
    description: The EPNS name, resolved on the managed host at run time (A and AAAA).
    type: str
    default: epns.eset.com
  ports:
    description: TCP ports allowed to EPNS.
    type: list
    elements: int
    default: [8883, 443]
  extra_destinations:
    description:
      - More IPv4/IPv6 addresses or CIDRs to allow on O(ports), for example ESET's published EPNS ranges.
      - Overlapping and adjacent networks are merged; a CIDR with host bits set (C(10.0.0.1/24)) is refused with the
        network it probably meant.
      - The entry V(eset_published) stands for ESET's published EPNS networks, the collection's dated data file
        C(plugins/plugin_utils/_published/epns_addresses.yml) (KB332 as an unverified third-party transcription;
        see C(docs/published-addresses.md)). V(eset_published:/path/to/file.yml) takes a file of the same layout
        (C(date), C(source), C(networks)) from the controller instead; a relative path is looked up the way a
        playbook's files are. The name is expanded on the controller before the module runs, so check and diff
        modes show the networks themselves; a file that cannot be read or holds no valid CIDR list fails the task
        naming the file and the layout expected. The result's RV(published) says which list was used.
    type: list
    elements: str
    default: []
  via_proxy:
    description:
      - C(HOST:PORT) (C([IPv6]:PORT) for an address) of the HTTP proxy this host reaches EPNS through, such as
        ESET Bridge on port 3128. The egress then goes to the proxy's addresses on that port instead of to EPNS.
    type: str
  also_direct:
    description: With O(via_proxy), allow the direct egress to EPNS as well.
    type: bool
    default: false
  persist:
    description:
      - Make the rules survive a reboot the distribution's usual way.
      - nftables - a file C(/etc/protectnet_epns/nftables.nft) included at the end of C(/etc/nftables.conf)
        (C(/etc/sysconfig/nftables.conf) on EL) by a marked block. Hooks into foreign default-deny chains are persisted
        only for tables that file declares. C(nftables.service) loads that file at boot; when it is not enabled (the
        Debian default), the module warns and does not enable it.
      - iptables - the owned lines inside C(/etc/iptables/rules.v4) and C(rules.v6) (C(/etc/sysconfig/iptables) and
        C(ip6tables) on EL), and the ipsets in C(/etc/iptables/ipsets) when ipset-persistent is installed (otherwise
        the saved rules list the networks one by one, so they load without an ipset loader).
      - firewalld - its permanent configuration, C(/etc/firewalld/policies/protectnet_epns.xml) (direct mode - our
        lines in C(/etc/firewalld/direct.xml)) and C(/etc/firewalld/ipsets/protectnet_epns_*.xml). With V(false) the
        objects exist only in firewalld's runtime and go with its next reload or restart, or a reboot.
      - ufw - ufw's own files, C(/etc/ufw/user.rules) and C(user6.rules), which ufw writes itself with every rule.
        With IPv6 turned off in ufw (C(IPV6=no) in C(/etc/default/ufw)) the IPv6 part is not applied (RV(not_applied)).
        ufw has no runtime-only rules, so V(false) with O(state=present) fails without changes (V(absent) works).
      - V(false) removes what an earlier run persisted and persists nothing.
      - A file that is rewritten keeps its mode, owner and group (Debian's C(/etc/nftables.conf) stays 0755); a new
        file gets the distribution's usual mode (the saved iptables rules 0640 on Debian, 0600 on EL).
      - Proven in the lab for every backend, IPv4 and IPv6 - after an apply, the live ruleset is flushed and loaded
        the way the distribution boots (C(nft -f /etc/nftables.conf); C(ipset restore), then C(iptables-restore) and
        C(ip6tables-restore) of the saved files; firewalld restarted from its permanent configuration; ufw loaded
        from its files), and EPNS is reachable; after O(state=absent) the same boot gives the host's own back.
    type: bool
    default: true
  rollback_seconds:
    description:
      - When the run changes the ruleset, revert it by itself after this many seconds unless the change is confirmed
        over a fresh connection (the action plugin resets the connection and runs
        M(protectnet.epns.epns_firewall_confirm)). Files (persistence, refresh job) are written only when confirmed.
      - V(0) applies without a rollback. Otherwise 3 to 3600.
    type: int
    default: 0
  refresh:
    description:
      - Install a job that re-resolves O(host) (and the proxy) and updates only the address sets, without touching any
        rule - a systemd timer where the host runs systemd, a C(/etc/cron.d) entry otherwise.
      - The job asks for the A and AAAA addresses separately. A family whose query fails (a timeout, a server
        failure) keeps its last known addresses, and the job logs that it kept them; only an answer replaces a set
        (an answer that the name has no address of that family empties it).
      - V(false) removes a job an earlier run installed.
    type: bool
    default: false
  refresh_interval:
    description: Minutes between two refreshes (1 to 59, or whole hours up to 1440).
    type: int
    default: 15
  iptables_variant:
    description:
      - For O(backend=iptables), V(legacy) or V(nft) (C(iptables-legacy)/C(iptables-nft)). V(auto) takes the variant
        that already holds the EPNS chain, else the only one with rules, else what C(iptables) points to.
    type: str
    choices: [auto, legacy, nft]
    default: auto
  ipset:
    description:
      - For O(backend=iptables), match ipsets (V(true)) or list the networks one rule each (V(false)). Unset - ipsets
        when the ipset tool works.
      - For O(backend=firewalld) in direct mode, V(false) lists the networks one direct rule each even where
        firewalld has ipsets (0.4 or later).
    type: bool
  firewalld_mode:
    description:
      - For O(backend=firewalld). V(policy) - a policy object and ipsets (firewalld 0.9 or later; fails on older
        versions). V(direct) - firewalld's direct interface - a chain C(PROTECTNET_EPNS) in the filter table of
        IPv4 and IPv6, jumped to by C(-m comment --comment "protectnet_epns jump" -j PROTECTNET_EPNS) at priority 0 of
        C(OUTPUT), with one rule per group and family matching the ipsets C(protectnet_epns_<group>_v4)/C(_v6)
        (C(-m set --match-set)) where firewalld has ipsets (0.4 or later), otherwise one rule per network (an address
        change then adds and removes only those rules, without a reload). V(auto) - V(policy) where the firewalld
        version has policy objects, V(direct) otherwise.
      - "Direct mode persists in C(/etc/firewalld/direct.xml), a file shared with the host: only the lines naming
        C(PROTECTNET_EPNS) are ever added, changed or removed (right after C(<direct>), so at equal priority they come
        first); everything else in the file stays byte for byte, and V(absent) gives the file back exactly as it was
        (or removes it if this module created it). Structural changes stage the objects and do one C(--reload) like
        the policy mode, which drops others' runtime-only direct rules; put the host's own direct rules in
        C(direct.xml) (C(--permanent))."
      - "Direct rules are iptables rules: with firewalld's nftables backend they do not override a reject or drop in
        firewalld's own policies or zones (a warning says so when V(direct) is chosen where policies exist). They
        are meant for firewalld before 0.9, where an egress deny is itself made of direct rules."
    type: str
    choices: [auto, policy, direct]
    default: auto
notes:
  - Only TCP egress from the host itself (output hook) is opened; forwarding and inbound rules are not touched.
  - Check mode reads the ruleset with read-only commands (C(nft -j list ruleset), C(iptables-save), C(ipset save),
    C(firewall-cmd --state/--version/--info-policy/--get-ipsets/--info-ipset/--direct --get-all-rules/--direct
    --get-all-chains), C(ufw status verbose), C(ufw show added)),
    which never load a table.
  - With ufw, the rules are saved by ufw as they are added, so with O(rollback_seconds) a reboot before the
    confirmation keeps them (they only allow egress to EPNS). The other backends write nothing before it.
  - Runs the Python standard library on the managed host and on the controller.
seealso:
  - module: protectnet.epns.epns_probe
  - module: protectnet.epns.epns_firewall_confirm
  - name: nft(8)
    description: The nftables command line.
    link: https://www.netfilter.org/projects/nftables/manpage.html
  - name: iptables-restore(8)
    description: Atomic iptables changes with --noflush.
    link: https://man7.org/linux/man-pages/man8/iptables-restore.8.html
  - name: firewalld.policy(5)
    description: firewalld policy objects.
    link: https://firewalld.org/documentation/man-pages/firewalld.policy.html
  - name: firewalld.direct(5)
    description: firewalld's direct interface and direct.xml.
    link: https://firewalld.org/documentation/man-pages/firewalld.direct.html
  - name: ufw(8)
    description: The uncomplicated firewall.
    link: https://manpages.ubuntu.com/manpages/jammy/man8/ufw.8.html
"""

EXAMPLES = r"""
- name: Open EPNS egress, proven safe by a rollback unless confirmed
  protectnet.epns.epns_firewall:
    extra_destinations:
      - 91.228.165.144/30
      - 91.228.167.171/32
    rollback_seconds: 30
    refresh: true

- name: Allow ESET's published EPNS networks too (the collection's list, or your own file of the same layout)
  protectnet.epns.epns_firewall:
    extra_destinations:
      - eset_published
      # - eset_published:files/epns_addresses.yml

- name: Hosts behind ESET Bridge get egress to the proxy instead
  protectnet.epns.epns_firewall:
    via_proxy: bridge.example.com:3128

- name: Remove everything the module added
  protectnet.epns.epns_firewall:
    state: absent
"""

RETURN = r"""
backend:
  description: The backend used.
  returned: always
  type: str
  sample: nftables
backend_reason:
  description: Why this backend (for O(backend=auto), what was detected).
  returned: always
  type: str
  sample: "auto: nftables carries the host's default-deny egress (default-deny egress in inet filter output)"
iptables_variant:
  description: The iptables variant used (V(legacy) or V(nft)).
  returned: when the backend is iptables
  type: str
firewalld_mode:
  description: The firewalld mode used (V(policy) or V(direct)) and the firewalld version.
  sample: direct (firewalld 0.8.2)
  returned: when the backend is firewalld
  type: str
destinations:
  description: The allowed destinations per group (C(epns), C(proxy)), merged and sorted.
  returned: always
  type: dict
  sample: {"epns": {"ports": [443, 8883], "ipv4": ["198.18.1.10/32"], "ipv6": ["2001:db8:0:1::10/128"]}}
resolved:
  description: What each name resolved to on the host.
  returned: always
  type: dict
  sample: {"epns.eset.com": ["198.18.1.10/32", "2001:db8:0:1::10/128"]}
changes:
  description: Owned objects added and removed; C(sets.changed) lists the addresses added to and removed from sets.
  returned: always
  type: dict
before:
  description:
    - The objects the module owns in the chosen backend before the run - C(containers) (tables, chains, ipset
      definitions, hooks into foreign chains - id to spec), C(sets) (id to sorted networks) and C(rules) (id to text).
  returned: always
  type: dict
after:
  description: The same objects after the run (as they would be, in check mode); empty for O(state=absent).
  returned: always
  type: dict
not_applied:
  description:
    - Parts of the policy the backend cannot carry on this host, each with C(family), C(networks) and C(reason);
      the run also warns. Today - ufw with IPv6 turned off (C(IPV6=no) in C(/etc/default/ufw)) leaves the IPv6 part
      out instead of failing on it.
  returned: always
  type: list
  elements: dict
  sample: [{"family": "ipv6", "networks": ["2001:db8:0:1::10/128"], "reason": "IPv6 is turned off in ufw (...)"}]
published:
  description:
    - The published lists O(extra_destinations) named (V(eset_published)), each with C(path) (on the controller),
      C(date) (the list's revision), C(source) and C(networks).
  returned: when O(extra_destinations) names a published list
  type: list
  elements: dict
  version_added: 0.5.0
  sample: [{"path": ".../epns_addresses.yml", "date": "2026-07-24", "source": "ESET KB332 ...",
            "networks": ["91.228.165.144/30", "91.228.165.148/32"]}]
rollback:
  description:
    - C(null) without a rollback. Otherwise C(token), C(deadline) (epoch seconds), C(seconds) and, from the action
      plugin, C(state) - V(confirmed); or, when the confirmation failed, what the host's own record of its revert
      says, read over a new connection once the deadline (counted from the moment the rollback was armed) has
      passed - V(reverted) (with its C(result)), V(revert_failed) (the message names each restore command that
      failed), or V(unverified) when no new session got in to read it.
    - A confirmation that kept the change but whose refresh timer command failed fails the task with
      C(state=confirmed) and a message naming the command.
  returned: always
  type: dict
"""

import sys  # noqa: E402
import typing as t  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._python_floor import require_supported_python  # noqa: E402

require_supported_python()  # first: the imports below need Python 3.8 and would fail on 3.6 without saying why
from ansible_collections.protectnet.epns.plugins.module_utils._epns import FALLBACK_PORT, HOST, PRIMARY_PORT  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._firewall._engine import Request, run  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._firewall._model import (  # noqa: E402
    ApplyError,
    FirewallError,
    PolicySpec,
)
from ansible_collections.protectnet.epns.plugins.module_utils._firewall._refresh import check_interval  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._firewall._rollback import check_seconds  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._host._run import CommandError, ModuleRunner  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._result import change_result, exit_changed  # noqa: E402


def argument_spec() -> t.Dict[str, t.Any]:
    return dict(
        state=dict(type="str", choices=["present", "absent"], default="present"),
        backend=dict(type="str", choices=["auto", "nftables", "firewalld", "iptables", "ufw"], default="auto"),
        host=dict(type="str", default=HOST),
        ports=dict(type="list", elements="int", default=[PRIMARY_PORT, FALLBACK_PORT]),
        extra_destinations=dict(type="list", elements="str", default=[]),
        via_proxy=dict(type="str"),
        also_direct=dict(type="bool", default=False),
        persist=dict(type="bool", default=True),
        rollback_seconds=dict(type="int", default=0),
        refresh=dict(type="bool", default=False),
        refresh_interval=dict(type="int", default=15),
        iptables_variant=dict(type="str", choices=["auto", "legacy", "nft"], default="auto"),
        ipset=dict(type="bool"),
        firewalld_mode=dict(type="str", choices=["auto", "policy", "direct"], default="auto"),
    )


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    try:
        if p["rollback_seconds"]:
            check_seconds(p["rollback_seconds"])
        if p["refresh"]:
            check_interval(p["refresh_interval"])
        if p["state"] == "present" and not p["host"].strip():
            raise FirewallError("host must not be empty (default: epns.eset.com)")
        spec = PolicySpec(host=p["host"].strip(), ports=tuple(p["ports"]),
                          extra_destinations=tuple(p["extra_destinations"]), via_proxy=p["via_proxy"],
                          also_direct=p["also_direct"])
        request = Request(state=p["state"], backend=p["backend"], spec=spec, persist=p["persist"],
                          rollback_seconds=p["rollback_seconds"], refresh=p["refresh"],
                          refresh_interval=p["refresh_interval"],
                          options={"iptables_variant": p["iptables_variant"], "ipset": p["ipset"],
                                   "firewalld_mode": p["firewalld_mode"]},
                          python=sys.executable)
        result = run(request, ModuleRunner(module), module.check_mode)
    except ApplyError as exc:
        module.fail_json(msg=str(exc), rolled_back=exc.rolled_back, changed=not exc.rolled_back)
    except (FirewallError, CommandError) as exc:
        module.fail_json(msg=str(exc), changed=False)
    exit_changed(module, change_result(**result))


if __name__ == "__main__":
    main()
