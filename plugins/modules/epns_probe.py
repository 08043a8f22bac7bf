#!/usr/bin/python
# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: epns_probe
short_description: Prove that ESET's push notification service (EPNS) is reachable, and name where it breaks
version_added: 0.1.0
description:
  - Probes every path an ESET Management Agent may use to reach EPNS (C(epns.eset.com), MQTT over TLS) from the
    managed host, on port 8883 (primary) and 443 (fallback), direct and through each HTTP proxy given.
  - Each path goes through the stages TCP connect, HTTP CONNECT (proxy paths only), TLS, MQTT 3.1.1 CONNECT/CONNACK
    and, optionally, an idle hold with keepalive pings. The first failing stage is classified (for example
    C(tcp_timeout), C(proxy_refused), C(tls_intercepted), C(idle_dropped)) with a human message and a hint.
  - DNS is resolved once by the host's own resolver; every address is tried, all paths and addresses run
    concurrently, and the whole call ends within O(timeout) whatever the network does.
  - "A path counts as working (RV(paths[].proven_by_auth)) when TLS with the genuine server was verified and the broker
    then refused us in a way no device on the path can forge: a TLS 1.3 alert that our certificate is missing or
    refused (encrypted, so only that server can send it), or CONNACK return code 4 or 5 inside the verified session.
    That proves the network path even though the probe has no agent credentials. A bare TCP reset (C(connection_reset)),
    a close without an alert, or a TLS 1.2 alert (sent in clear) proves nothing. Give O(client_cert) and O(client_key)
    to go the whole way."
  - Uses only the Python standard library on the managed host.
author:
  - protectnet.epns contributors (@protectnet)
extends_documentation_fragment:
  - protectnet.epns._attributes
  - protectnet.epns._attributes.INFO_MODULE
  - protectnet.epns._attributes.ACTIONGROUP_EPNS
  - protectnet.epns._probe_server
options:
  host:
    description:
      - The EPNS host name (or an address) to resolve and connect to. Proxy paths ask the proxy to connect to this name.
    type: str
    default: epns.eset.com
  server_name:
    description:
      - The name sent as TLS SNI and checked against the server certificate.
      - Defaults to O(host). Set it when O(host) is an address, for example to probe a test broker at C(127.0.0.1)
        that presents the C(epns.eset.com) certificate.
    type: str
  primary_port:
    description: The primary EPNS port. A working path on this port makes the verdict C(reachable).
    type: int
    default: 8883
  fallback_port:
    description:
      - The fallback EPNS port. When only this port works the verdict is C(degraded). Must differ from O(primary_port).
    type: int
    default: 443
  direct:
    description: Probe the direct paths (no proxy) on both ports.
    type: bool
    default: true
  proxies:
    description:
      - HTTP proxies to probe EPNS through, each as C(http://HOST:PORT) (the agent's HTTP proxy, for example ESET Bridge
        on port 3128). Both ports are probed through each proxy with HTTP CONNECT; the proxy resolves O(host).
      - A URL with user name or password is refused, because EPNS does not support proxy authentication. Other schemes,
        a missing port or a path are refused as well.
    type: list
    elements: str
    default: []
  address_family:
    description: Which addresses of O(host) and of the proxies to use.
    type: str
    choices: [any, ipv4, ipv6]
    default: any
  dns_sinkhole_addresses:
    description:
      - Addresses and CIDRs that mean "blocked by a DNS filter" when the resolver returns them for O(host). The probe
        never connects to such an address; when every address of O(host) is one, the DNS stage fails with class
        C(dns_sinkholed); when only some are, the others are probed. RV(dns.sinkholed) lists the sinkholed ones.
      - Defaults to loopback (C(127.0.0.0/8), C(::1)), which Pi-hole, AdGuard Home and most DNS filters besides the
        null address answer, and Cisco Umbrella/OpenDNS block pages (C(146.112.61.104)-C(108), C(146.112.61.110) and
        their C(::ffff:) forms, as Cisco documents them). Add your own DNS filter's block page address here.
      - C(0.0.0.0/8) and C(::) are always sinkholes (connecting to them reaches this host), whatever this list says.
        An address given as O(host) is never checked, since no DNS answer is involved.
    type: list
    elements: str
  timeout:
    description:
      - Seconds the whole probe may take, all paths together. Paths still unfinished then are reported with class
        C(timeout).
    type: float
    default: 10
  connect_timeout:
    description:
      - Seconds each stage of each path may take (DNS lookup, TCP connect, proxy answer, TLS handshake, CONNACK,
        PINGRESP). A resolver that answers later is classified C(dns_timeout).
    type: float
    default: 3
  hold_seconds:
    description:
      - After CONNACK, keep each working connection open this many seconds and ping it, to catch firewalls and proxies
        that cut idle connections (class C(idle_dropped)). V(0) does not hold.
      - Must be less than O(timeout).
    type: float
    default: 0
  ping_interval:
    description:
      - Seconds between MQTT PINGREQs while holding. The default, O(hold_seconds), stays idle for the whole hold and
        then pings once, which is how an idle cut is caught. Needs O(hold_seconds).
      - The keepalive announced in CONNECT is at least twice this, so the broker does not end the session itself.
    type: float
  ca_path:
    description:
      - A PEM file or a hashed certificate directory (C(c_rehash)) with the CA certificates to verify the server
        against, instead of the host's system store.
    type: path
  validate_certs:
    description:
      - Verify the server certificate chain and name. Only turn this off to look at a server you cannot verify; an
        unverified path never counts as proven by authentication.
    type: bool
    default: true
  expected_issuer:
    description:
      - Who should vouch for the EPNS server certificate. When set, a chain that does not match is classified
        C(tls_intercepted), even when the host trusts it (a TLS-inspecting proxy whose CA is installed on the host).
      - A plain value (no C(=)) matches a C(CN) or C(O) of the leaf's issuer or of a CA in the chain, ignoring case and
        surrounding spaces.
      - An RFC 4514 distinguished name, e.g. V(CN=PN Lab Root CA,O=PN Lab), matches the leaf's issuer or the subject of
        a CA in the chain as a whole (the same attributes and values, in any order, ignoring case and spacing).
      - A SHA-256 pin of a CA's public key (its SubjectPublicKeyInfo) as V(sha256//BASE64) (curl's C(--pinnedpubkey)
        form) or as 64 hex digits (optionally prefixed C(sha256:), colons allowed) matches an intermediate the server
        sent or the trust anchor the chain ends in. A pin is only checked on a verified chain.
      - When it matches, the check for a locally added trust anchor is skipped (you said who the issuer is); the
        O(inspection_issuers) names still apply.
    type: str
  inspection_issuers:
    description:
      - CA names that TLS-inspection products give their CA by default. A verified chain in which a CA (the leaf's
        issuer, an intermediate or the trust anchor) has a C(CN), C(O) or C(OU) equal to one of them (ignoring case
        and spacing; C(*) and C(?) are wildcards) is classified C(tls_intercepted), naming the product, whether the CA
        is trusted through the system store or O(ca_path).
      - Unset, the documented default list applies (FortiGate, Cisco Umbrella, Sophos Firewall; see
        docs/tls-interception.md for each name and its source). A list replaces it; V([]) turns the check off.
      - Independently, when the chain was verified against the system store (no O(ca_path)), a chain that ends in a
        trust anchor added on this host rather than shipped by the distribution (C(/usr/local/share/ca-certificates),
        C(/etc/pki/ca-trust/source/anchors), C(/etc/pki/trust/anchors), ...) is C(tls_intercepted), naming the anchor.
    type: list
    elements: str
  client_cert:
    description: A PEM client certificate (optionally with its key) to present when the broker asks for one.
    type: path
  client_key:
    description: The unencrypted PEM private key of O(client_cert), when it is not in the same file.
    type: path
  mqtt_client_id:
    description:
      - The MQTT client identifier, 1-23 characters from C(A-Z), C(a-z), C(0-9), C(-) and C(_). Defaults to a random
        C(pnprobe-) followed by 8 hex digits, so concurrent probes do not take over each other's session.
      - The paths of one probe run at the same time, and a broker ends the older of two sessions with the same
        identifier, so only the first MQTT session uses this value as given; the others append C(-1), C(-2), ...
        (shortening it to stay within 23 characters). Random default identifiers are simply drawn anew.
    type: str
  fail_on:
    description:
      - Which verdict fails the task (with the full result). V(unreachable) fails only when no path works; V(degraded)
        also fails when only the fallback works; V(never) always returns the result.
      - The failure message is the verdict itself, then the path and stage that break and the fix (the hint of
        the failure class). With ansible-core 2.19 and C(ANSIBLE_DISPLAY_TRACEBACK=error), that verdict stands
        where a traceback of the module would be.
    type: str
    choices: [unreachable, degraded, never]
    default: unreachable
notes:
  - The probe never changes the host, so it runs the same in check mode and always returns C(changed=false).
  - The MQTT session uses MQTT 3.1.1 with a clean session and no user name; it subscribes and publishes nothing.
  - Times in the result are whole milliseconds.
seealso:
  - name: ESET PROTECT help, ESET Push Notification Service
    description: What EPNS is and which host and ports it uses.
    link: https://help.eset.com/protect_admin/11.0/en-US/epns.html
"""

EXAMPLES = r"""
- name: Probe EPNS directly and through the agent's proxy
  protectnet.epns.epns_probe:
    proxies:
      - http://bridge.example.com:3128
  register: epns

- name: Catch firewalls that cut idle connections after 30 seconds
  protectnet.epns.epns_probe:
    hold_seconds: 45
    timeout: 60
  register: epns_hold

- name: Report TLS inspection even when the inspection CA is trusted
  protectnet.epns.epns_probe:
    expected_issuer: DigiCert Global G2 TLS RSA SHA256 2020 CA1
    fail_on: degraded

- name: Probe a lab broker at an address with the real name for SNI
  protectnet.epns.epns_probe:
    host: 198.18.1.10
    server_name: epns.eset.com
    ca_path: /etc/pki/lab-ca.pem
"""

RETURN = r"""
verdict:
  description:
    - C(reachable) when a path on the primary port works, C(degraded) when only a fallback path works, else
      C(unreachable).
  returned: always
  type: str
  sample: reachable
verdict_reason:
  description: One sentence saying why, that a person can act on.
  returned: always
  type: str
  sample: 8883 direct works.
server_verdict:
  description:
    - Null without O(eset_server). Else C(reachable) when every server path works, C(partial) when some do (an
      agent on a failing one cannot connect back after a wake-up call), C(unreachable) when none does. Never part of
      RV(verdict).
  returned: always
  type: str
  sample: reachable
server_verdict_reason:
  description: Which server paths work and which fail with their class; null without O(eset_server).
  returned: always
  type: str
eset_server: {description: O(eset_server) or null., returned: always, type: str}
server_paths:
  description:
    - The server paths (empty without O(eset_server)), direct then through each proxy, shaped like RV(paths) with
      RV(paths[].role) C(server), ids such as C(2222 server direct) or C(2222 server via http://proxy:3128), and the
      stages C(tcp), C(proxy_connect) (proxy paths) and C(tls) only. Failure classes are the probe's (C(tcp_refused),
      C(tcp_timeout), C(proxy_refused), C(tls_untrusted) also for a host name mismatch, C(tls_intercepted), ...),
      with hints in the server's terms.
  returned: always
  type: list
  elements: dict
working_fallback:
  description: The id of the working fallback path when the verdict is C(degraded), else null.
  returned: always
  type: str
  sample: 443 direct
host:
  description: The probed host name, O(host).
  returned: always
  type: str
  sample: epns.eset.com
elapsed_ms:
  description: Milliseconds the whole probe took.
  returned: always
  type: int
  sample: 412
dns:
  description:
    - The answer of the host's own resolver (getaddrinfo, A and AAAA) for O(host).
    - When O(direct=false) the host's resolver is not asked (the proxy resolves the name) and RV(dns.ok) is null.
  returned: always
  type: dict
  contains:
    ok:
      description: Whether usable addresses were found; null when not asked.
      type: bool
    addresses:
      description: All addresses, in the resolver's order.
      type: list
      elements: str
    ipv4:
      description: The IPv4 addresses.
      type: list
      elements: str
    ipv6:
      description: The IPv6 addresses.
      type: list
      elements: str
    elapsed_ms:
      description: Milliseconds the lookup took.
      type: int
    sinkholed:
      description: Addresses the resolver returned that are sinkholes (see O(dns_sinkhole_addresses)); never tried.
      type: list
      elements: str
    nameservers:
      description:
        - When the lookup failed, timed out or returned only sinkholes, what the nameservers of C(/etc/resolv.conf)
          answered when the probe asked them directly (UDP, A and/or AAAA); empty otherwise.
      type: list
      elements: dict
      contains:
        server:
          description: The nameserver's address.
          type: str
        type:
          description: C(A) or C(AAAA).
          type: str
        rcode:
          description: The answer's response code (C(NOERROR), C(NXDOMAIN), C(SERVFAIL), C(REFUSED), ...); null when
            there was no usable answer (see RV(dns.nameservers[].error)).
          type: str
        addresses:
          description: The addresses in the answer.
          type: list
          elements: str
        error:
          description: Null, or why there is no rcode (no answer in time, a network error, a malformed answer).
          type: str
        truncated:
          description: The answer had the TC flag (too large for UDP); the probe does not retry over TCP.
          type: bool
        elapsed_ms:
          description: Milliseconds until the answer.
          type: int
    failure:
      description:
        - Null, or a failure (see RV(paths[].failure)) of class C(dns_nxdomain), C(dns_servfail), C(dns_refused),
          C(dns_timeout), C(dns_sinkholed), C(dns_no_answer) (the name exists but has no address of the family
          asked for) or C(timeout) (the overall deadline). The message quotes the nameservers' answers.
      type: dict
egress:
  description:
    - The host's way out per family (C(ipv4), C(ipv6); null without an address of it to look toward) - C(toward)
      (the family's first address in RV(dns.addresses), with O(direct=false) the first proxy's), C(source) (the
      kernel's pick, by a UDP C(connect) that sends nothing), C(gateway) and C(interface) (the main routing table,
      C(/proc/net/route) and C(/proc/net/ipv6_route); policy routing may differ, which only C(source) shows).
      A field is null when unknown; C(gateway) is also null for an on-link address.
  returned: always
  type: dict
  version_added: 0.5.0
  sample: {ipv4: {toward: 198.18.1.10, source: 198.18.0.11, gateway: 198.18.0.254, interface: eth0}, ipv6: null}
paths:
  description:
    - One entry per path, in this order. Direct primary, direct fallback, then primary and fallback through each proxy.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Human label, for example C(8883 direct) or C(443 via http://proxy.example.com:3128).
      type: str
    port:
      description: The EPNS port of this path.
      type: int
    role:
      description: C(primary) or C(fallback).
      type: str
    proxy:
      description: The proxy URL, or null for a direct path.
      type: str
    ok:
      description: Whether the path carries EPNS (includes RV(paths[].proven_by_auth)).
      type: bool
    proven_by_auth:
      description: True when TLS to the genuine server was verified and the broker then demanded credentials.
      type: bool
    note:
      description: Null or a sentence, for example why a proven-by-authentication path counts, or which address failed.
      type: str
    failure:
      description:
        - Null when the path works fully. Otherwise the failure of the attempt that got furthest, also when the path
          is proven by authentication.
        - Keys C(class) (one of C(dns_no_answer), C(tcp_timeout), C(tcp_refused), C(tcp_unreachable),
          C(proxy_unreachable), C(proxy_refused), C(proxy_bad_response), C(tls_handshake_failed), C(tls_untrusted),
          C(tls_intercepted), C(tls_client_cert_required), C(mqtt_no_connack), C(mqtt_bad_response), C(mqtt_refused),
          C(idle_dropped), C(timeout), C(connection_reset), C(probe_error)), C(stage) (where it was seen, one of
          C(dns), C(tcp), C(proxy_connect), C(tls), C(mqtt), C(hold)), C(message), C(raw_error), C(elapsed_ms) (of
          that stage) and C(hint).
      type: dict
    elapsed_ms:
      description: Milliseconds of the longest attempt of this path.
      type: int
    attempts:
      description:
        - One per address tried (for a proxy path, one to the proxy's first address), with keys C(address), C(family),
          C(ok), C(proven_by_auth), C(failure), C(elapsed_ms), C(stages) (each C(name), C(ok), C(elapsed_ms), C(detail),
          in order, ending at the first failing stage), C(proxy_status) (the proxy's status line), C(tls) (C(version),
          C(cipher), C(subject), C(issuer), C(sans), C(not_after), C(sha256) of the leaf certificate's DER in lower-case
          hex, C(verified), and on a verified chain C(anchor), the name of the trust anchor it ends in, or null when
          not found) and C(mqtt) (C(return_code), C(meaning), C(session_present)).
        - C(tls) is also filled when verification failed, from the certificate the server showed.
      type: list
      elements: dict
  sample:
    - id: 8883 direct
      port: 8883
      role: primary
      proxy: null
      ok: true
      proven_by_auth: false
      note: null
      failure: null
      elapsed_ms: 37
      attempts:
        - address: 198.18.1.10
          family: ipv4
          ok: true
          proven_by_auth: false
          failure: null
          elapsed_ms: 37
          proxy_status: null
          stages:
            - {name: tcp, ok: true, elapsed_ms: 12, detail: {peer: "198.18.1.10:8883"}}
            - {name: tls, ok: true, elapsed_ms: 13, detail: {version: TLSv1.3}}
            - {name: mqtt, ok: true, elapsed_ms: 12, detail: {return_code: 0}}
          tls: {version: TLSv1.3, cipher: TLS_AES_256_GCM_SHA384, subject: CN=epns.eset.com,
                issuer: "CN=Example CA, O=Example", sans: [epns.eset.com], not_after: "2030-01-01T00:00:00Z",
                sha256: 5f0c..., verified: true, anchor: "CN=Example CA, O=Example"}
          mqtt: {return_code: 0, meaning: Connection accepted, session_present: false}
"""

import inspect  # noqa: E402
import typing as t  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._python_floor import require_supported_python  # noqa: E402

require_supported_python()  # first: the imports below need Python 3.8 and would fail on 3.6 without saying why
from ansible_collections.protectnet.epns.plugins.module_utils._epns import (  # noqa: E402
    FAIL_ON_CHOICES,
    FALLBACK_PORT,
    HOST,
    PRIMARY_PORT,
)
from ansible_collections.protectnet.epns.plugins.module_utils._probe._classify import (  # noqa: E402
    verdict_fails,
    verdict_failure_message,
)
from ansible_collections.protectnet.epns.plugins.module_utils._probe._engine import run_probe  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._probe._options import (  # noqa: E402
    ADDRESS_FAMILIES,
    ESET_SERVER_PORT,
    ProbeConfigError,
    ProbeOptions,
    proxy_passwords,
)
from ansible_collections.protectnet.epns.plugins.module_utils._probe._server import server_line  # noqa: E402


def argument_spec() -> t.Dict[str, t.Any]:
    return dict(
        host=dict(type="str", default=HOST),
        server_name=dict(type="str"),
        primary_port=dict(type="int", default=PRIMARY_PORT),
        fallback_port=dict(type="int", default=FALLBACK_PORT),
        direct=dict(type="bool", default=True),
        proxies=dict(type="list", elements="str", default=[]),
        address_family=dict(type="str", choices=list(ADDRESS_FAMILIES), default="any"),
        dns_sinkhole_addresses=dict(type="list", elements="str"),
        timeout=dict(type="float", default=10.0),
        connect_timeout=dict(type="float", default=3.0),
        hold_seconds=dict(type="float", default=0.0),
        ping_interval=dict(type="float"),
        ca_path=dict(type="path"),
        validate_certs=dict(type="bool", default=True),
        expected_issuer=dict(type="str"),
        inspection_issuers=dict(type="list", elements="str"),
        client_cert=dict(type="path"),
        client_key=dict(type="path"),
        mqtt_client_id=dict(type="str"),
        fail_on=dict(type="str", choices=list(FAIL_ON_CHOICES), default="unreachable"),
        eset_server=dict(type="str"),
        eset_server_port=dict(type="int", default=ESET_SERVER_PORT),
        eset_server_ca_path=dict(type="path"),
    )


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_by={"client_key": "client_cert"},
        supports_check_mode=True,
    )
    # A proxy URL with a password is refused, but Ansible would still echo it in `invocation`.
    module.no_log_values.update(proxy_passwords(module.params["proxies"]))
    params = module.params
    settings = ProbeOptions(**{k: v for k, v in params.items() if k != "fail_on"})
    try:
        result = run_probe(settings)
    except ProbeConfigError as exc:
        module.fail_json(msg=str(exc))
    result["changed"] = False
    if server_line(result):
        module.warn(server_line(result))
    if verdict_fails(result["verdict"], params["fail_on"]):
        _fail_with_verdict(module, result)
    module.exit_json(**result)


def _fail_with_verdict(module: AnsibleModule, result: t.Dict[str, t.Any]) -> None:
    message = " ".join(filter(None, (verdict_failure_message(result), server_line(result))))
    # ansible-core 2.19+ (keyword-only `exception`) would attach the module's call stack, shown with
    # ANSIBLE_DISPLAY_TRACEBACK=error as if the probe had crashed; the verdict stands in for it. Older releases
    # print any `exception` as "An exception occurred", so they get none.
    stands_in = {"exception": message} if "exception" in inspect.signature(module.fail_json).parameters else {}
    module.fail_json(msg=message, **stands_in, **result)


if __name__ == "__main__":
    main()
