# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The one home of what the collection knows about ESET's push notification service (EPNS):
# where it lives, and the words used to explain why a path to it fails.
from __future__ import annotations

import typing as t

HOST = "epns.eset.com"
PRIMARY_PORT = 8883
FALLBACK_PORT = 443

# MQTT 3.1.1 client identifiers of 1-23 characters must be accepted by every broker (spec 3.1.3.1).
CLIENT_ID_PREFIX = "pnprobe-"
CLIENT_ID_MAX = 23

VERDICT_REACHABLE = "reachable"
VERDICT_DEGRADED = "degraded"
VERDICT_UNREACHABLE = "unreachable"
# Worst last: fail_on compares positions in this tuple.
VERDICTS = (VERDICT_REACHABLE, VERDICT_DEGRADED, VERDICT_UNREACHABLE)
FAIL_ON_CHOICES = ("unreachable", "degraded", "never")

STAGES = ("dns", "tcp", "proxy_connect", "tls", "mqtt", "hold")

DNS_NO_ANSWER = "dns_no_answer"
# What the nameservers said when getaddrinfo gave no usable address (_probe/_dns asks them itself).
DNS_NXDOMAIN = "dns_nxdomain"
DNS_SERVFAIL = "dns_servfail"
DNS_REFUSED = "dns_refused"
DNS_TIMEOUT = "dns_timeout"
DNS_SINKHOLED = "dns_sinkholed"
TCP_TIMEOUT = "tcp_timeout"
TCP_REFUSED = "tcp_refused"
TCP_UNREACHABLE = "tcp_unreachable"
PROXY_UNREACHABLE = "proxy_unreachable"
PROXY_REFUSED = "proxy_refused"
PROXY_BAD_RESPONSE = "proxy_bad_response"
TLS_HANDSHAKE_FAILED = "tls_handshake_failed"
TLS_UNTRUSTED = "tls_untrusted"
TLS_INTERCEPTED = "tls_intercepted"
TLS_CLIENT_CERT_REQUIRED = "tls_client_cert_required"
MQTT_NO_CONNACK = "mqtt_no_connack"
MQTT_BAD_RESPONSE = "mqtt_bad_response"
MQTT_REFUSED = "mqtt_refused"
IDLE_DROPPED = "idle_dropped"
TIMEOUT = "timeout"

# What proves nothing about the network: a bare reset, and the probe's own failure.
CONNECTION_RESET = "connection_reset"
PROBE_ERROR = "probe_error"


class FailureClass(t.NamedTuple):
    explanation: str
    hint: str


FAILURE_CLASSES: t.Dict[str, FailureClass] = {
    DNS_NO_ANSWER: FailureClass(
        "The name exists but has no address of the family asked for (or the host's name service "
        "returned none although DNS has one).",
        "Check /etc/resolv.conf, nsswitch.conf and the DNS servers this host uses; with "
        "address_family ipv4 or ipv6, check that EPNS has an address of that family from here.",
    ),
    DNS_NXDOMAIN: FailureClass(
        "The DNS server answered NXDOMAIN: it says the EPNS name does not exist.",
        "The resolver in /etc/resolv.conf does not see the public eset.com zone: an internal DNS "
        "needs a forwarder (or conditional forwarder) for eset.com, or a DNS filter blocks the name.",
    ),
    DNS_SERVFAIL: FailureClass(
        "The DNS server answered SERVFAIL: it could not resolve the name (upstream unreachable, "
        "DNSSEC validation failed, or a broken forwarder).",
        "Ask the resolver's administrator to check its forwarders and its logs for eset.com; "
        "dig epns.eset.com @<resolver> shows the same answer.",
    ),
    DNS_REFUSED: FailureClass(
        "The DNS server answered REFUSED: it does not serve this host or this name.",
        "Point /etc/resolv.conf at a resolver that allows recursion for this host, or allow this "
        "host in the resolver's access rules.",
    ),
    DNS_TIMEOUT: FailureClass(
        "No DNS answer within connect_timeout: the nameservers are silent or too slow.",
        "Check that the nameservers in /etc/resolv.conf are up and that UDP and TCP port 53 to them "
        "are allowed; a resolver slower than connect_timeout needs fixing (or a larger connect_timeout).",
    ),
    DNS_SINKHOLED: FailureClass(
        "The DNS answer is a sinkhole: a DNS filter answered with a block address (0.0.0.0, ::, "
        "loopback or a block page) instead of EPNS; the probe does not connect to it.",
        "Allow epns.eset.com (and *.eset.com) in the DNS filter (Pi-hole, AdGuard, Umbrella, a "
        "firewall's DNS filter); dns_sinkhole_addresses lists the addresses treated as sinkholes.",
    ),
    TCP_TIMEOUT: FailureClass(
        "No answer to the TCP connection attempt: a firewall drops the packets silently.",
        "Allow outbound TCP to EPNS on this port in the host firewall and on every network firewall "
        "on the way (the drop is silent, so it may be any of them).",
    ),
    TCP_REFUSED: FailureClass(
        "The connection was actively refused (TCP reset or ICMP port unreachable).",
        "Something answers for the EPNS address but does not accept the port: a firewall rejecting with "
        "a TCP reset (this host's own or one on the way: the answer looks the same), or a DNS answer that "
        "points at the wrong machine.",
    ),
    TCP_UNREACHABLE: FailureClass(
        "The destination cannot be reached: no route, an ICMP reject, or (EPERM only) this host's own policy.",
        "An ICMP reject looks the same to the probe whether this host's firewall or one on the way sent it: "
        "check the reject rules of both and the routing table; for IPv6, check that the host has a working "
        "IPv6 route or set address_family.",
    ),
    PROXY_UNREACHABLE: FailureClass(
        "The HTTP proxy itself could not be reached.",
        "Check the proxy host and port in the agent policy and that the proxy is running and allowed "
        "from this host.",
    ),
    PROXY_REFUSED: FailureClass(
        "The HTTP proxy answered the CONNECT request with an error status.",
        "Allow CONNECT to epns.eset.com on port 8883 (and 443, the fallback) in the proxy, for that name "
        "only: protectnet.epns.proxy_connect_ports does it for squid and Apache. EPNS does not support proxy "
        "authentication: a 407 means the proxy must let EPNS through without credentials.",
    ),
    PROXY_BAD_RESPONSE: FailureClass(
        "The HTTP proxy sent something that is not a complete HTTP response in time.",
        "Check that the configured port is an HTTP proxy port (not a TLS or SOCKS port) and that no "
        "device in between tampers with the traffic.",
    ),
    TLS_HANDSHAKE_FAILED: FailureClass(
        "The TLS handshake did not complete.",
        "A device on the path may block or break TLS on this port (deep packet inspection, a port "
        "filter that only passes HTTPS), or the host's TLS library is too old.",
    ),
    TLS_UNTRUSTED: FailureClass(
        "The server's certificate is not trusted by this host or does not match the EPNS name.",
        "If the issuer shown is a TLS-inspecting proxy or firewall, exempt epns.eset.com from "
        "inspection; otherwise update the host's CA store.",
    ),
    TLS_INTERCEPTED: FailureClass(
        "A certificate chain this host trusts belongs to a TLS interceptor: it ends in a trust anchor added on "
        "this host rather than shipped by the distribution, a CA in it carries the name of an inspection "
        "product, or it does not match expected_issuer.",
        "Exempt epns.eset.com from TLS inspection on the proxy or firewall named in the message; an "
        "intercepted MQTT session is not the EPNS service. If the anchor named is genuinely yours and EPNS is "
        "not intercepted, set expected_issuer to the issuer EPNS shows.",
    ),
    TLS_CLIENT_CERT_REQUIRED: FailureClass(
        "The server asked for a client certificate and ended the session without one.",
        "On TLS 1.3 in a verified session this is how the genuine broker treats a probe without credentials "
        "(the path is proven_by_auth); a TLS 1.2 refusal travels in clear and proves nothing. Give client_cert "
        "and client_key to go the whole way.",
    ),
    MQTT_NO_CONNACK: FailureClass(
        "The TLS session was established but no MQTT CONNACK came back.",
        "Something terminates TLS without speaking MQTT (a TLS-inspecting proxy or a web server on "
        "443), or the broker is overloaded.",
    ),
    MQTT_BAD_RESPONSE: FailureClass(
        "The answer to MQTT CONNECT is not a valid MQTT 3.1.1 CONNACK.",
        "The peer is not an MQTT broker (e.g. an HTTPS server on 443 behind a TLS proxy) or the "
        "stream is being rewritten on the way.",
    ),
    MQTT_REFUSED: FailureClass(
        "The MQTT broker refused the connection (CONNACK return code other than 0).",
        "The broker is reachable; the refusal is about the client (protocol version, identifier or "
        "credentials).",
    ),
    IDLE_DROPPED: FailureClass(
        "The connection was cut while idle, or a keepalive ping got no answer.",
        "A firewall, NAT or proxy drops idle connections; EPNS keeps one connection open for hours. "
        "Raise the idle timeout for this traffic or exempt it.",
    ),
    TIMEOUT: FailureClass(
        "The probe's overall deadline ended this path before it finished.",
        "Raise timeout, or lower connect_timeout and hold_seconds so every stage fits.",
    ),
    CONNECTION_RESET: FailureClass(
        "The connection was reset (TCP RST) after the TLS handshake, without a TLS alert or an MQTT answer.",
        "A reset carries no proof of who sent it: a firewall, IPS or proxy that cuts TLS sessions after the "
        "handshake looks exactly like this. Check the devices on the path for this port; a broker that "
        "refuses a client without a certificate says so with a TLS alert, not a bare reset.",
    ),
    PROBE_ERROR: FailureClass(
        "The probe itself failed (an unexpected error in its code); this says nothing about the network.",
        "Report it with the message and raw_error shown; run the probe again, and judge the path by the other "
        "attempts and paths meanwhile.",
    ),
}

# MQTT 3.1.1 table 3.1; 6-255 are reserved.
CONNACK_MEANINGS: t.Dict[int, str] = {
    0: "Connection accepted",
    1: "Connection refused, unacceptable protocol version",
    2: "Connection refused, identifier rejected",
    3: "Connection refused, server unavailable",
    4: "Connection refused, bad user name or password",
    5: "Connection refused, not authorized",
}
# The broker judged who we are, so it is the real service on a working path.
CONNACK_AUTH_CODES = (4, 5)

DEGRADED_WHY = (
    "443 is shared with other services, and firewalls cut idle 443 connections and proxies limit "
    "open connections, so the persistent EPNS connection drops and wake-up calls are late or lost"
)
