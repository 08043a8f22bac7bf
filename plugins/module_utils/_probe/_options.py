# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The probe's options: their checks, and the plan (normalised settings plus the TLS contexts)
# built from them before any packet is sent. Standard library only; managed hosts run Python 3.8+.
from __future__ import annotations

import math
import os
import re
import secrets
import ssl
import typing as t
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from .. import _epns
from .._hostname import HostNameError, check_host
from . import _dns
from ._trust import (
    ISSUER_FORMS,
    InspectionName,
    IssuerSpec,
    TrustStore,
    inspection_names,
    parse_expected_issuer,
)

ADDRESS_FAMILIES = ("any", "ipv4", "ipv6")
ESET_SERVER_PORT = 2222
MAX_TIMEOUT = 3600.0
MAX_PINGS = 1000
_CLIENT_ID_RE = re.compile(r"^[0-9A-Za-z_-]{1," + str(_epns.CLIENT_ID_MAX) + r"}$")


class ProbeConfigError(ValueError):
    """An option value the probe cannot work with; the message names the value and the rule."""


@dataclass
class ProbeOptions:
    host: str = _epns.HOST
    server_name: t.Optional[str] = None
    primary_port: int = _epns.PRIMARY_PORT
    fallback_port: int = _epns.FALLBACK_PORT
    direct: bool = True
    proxies: t.List[str] = field(default_factory=list)
    address_family: str = "any"
    timeout: float = 10.0
    connect_timeout: float = 3.0
    hold_seconds: float = 0.0
    ping_interval: t.Optional[float] = None
    ca_path: t.Optional[str] = None
    validate_certs: bool = True
    expected_issuer: t.Optional[str] = None
    inspection_issuers: t.Optional[t.List[str]] = None
    client_cert: t.Optional[str] = None
    client_key: t.Optional[str] = None
    mqtt_client_id: t.Optional[str] = None
    # None: _dns.DEFAULT_SINKHOLES; the unspecified addresses are sinkholes whatever the list says.
    dns_sinkhole_addresses: t.Optional[t.List[str]] = None
    # The optional server path (_server): the ESET PROTECT server as the agent was installed with it.
    eset_server: t.Optional[str] = None
    eset_server_port: int = ESET_SERVER_PORT
    eset_server_ca_path: t.Optional[str] = None


class ProxySpec(t.NamedTuple):
    url: str
    host: str
    port: int


def redact_url(url: str) -> str:
    """The URL with any user info replaced, safe for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, tail = rest.partition("/")
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    return scheme + sep + netloc + slash + tail


def proxy_passwords(urls: t.Optional[t.List[str]]) -> t.List[str]:
    """The passwords in proxy URLs (refused, but to be kept out of anything Ansible echoes)."""
    found = []
    for url in urls or []:
        try:
            password = urlsplit(url).password
        except (ValueError, TypeError, AttributeError):
            continue
        if password:
            found.append(password)
    return found


def parse_proxy_url(url: str) -> ProxySpec:
    accepted = "accepted: http://HOST:PORT, e.g. http://proxy.example.com:3128"
    if not isinstance(url, str) or not url.strip():
        raise ProbeConfigError(f"proxies: empty proxy URL; {accepted}")
    shown = redact_url(url)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ProbeConfigError(
            f"proxies: {shown!r} is not a valid URL ({exc}); {accepted}") from None
    if parts.username is not None or parts.password is not None:
        raise ProbeConfigError(
            f"proxies: {shown!r} carries credentials, but ESET's push notification service does not "
            "support proxy authentication: the agent sends EPNS traffic to the proxy without "
            "credentials. Give the proxy without user info (http://HOST:PORT) and let it allow "
            "CONNECT to epns.eset.com:8883 and :443 without authentication.")
    if parts.scheme.lower() != "http":
        raise ProbeConfigError(
            f"proxies: {shown!r} uses scheme {parts.scheme or '(none)'!r}; only plain HTTP proxies (CONNECT) "
            f"are supported, {accepted}")
    if not parts.hostname:
        raise ProbeConfigError(f"proxies: {shown!r} has no host; {accepted}")
    if port is None:
        raise ProbeConfigError(
            f"proxies: {shown!r} has no port; give it explicitly (ESET Bridge uses 3128); {accepted}")
    if not 1 <= port <= 65535:
        raise ProbeConfigError(f"proxies: {shown!r} has port {port}, must be 1-65535")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ProbeConfigError(
            f"proxies: {shown!r} has a path, query or fragment; {accepted}")
    return ProxySpec(url.strip(), parts.hostname, port)


def _check_hostname(option: str, value: str, port_option: t.Optional[str] = None) -> str:
    """value as given (the probe connects to and reports the name as the user wrote it)."""
    try:
        check_host(value, option, zone_ids=True, port_option=port_option)
    except HostNameError as exc:
        raise ProbeConfigError(str(exc)) from None
    return value


def _check_seconds(option: str, value: t.Any, allow_zero: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ProbeConfigError(f"{option}: {value!r} is not a number of seconds") from None
    low_ok = number >= 0 if allow_zero else number > 0
    if not (low_ok and math.isfinite(number) and number <= MAX_TIMEOUT):
        low = "0" if allow_zero else "more than 0"
        raise ProbeConfigError(
            f"{option}: {value!r} is out of range; accepted: {low} up to {MAX_TIMEOUT:g} seconds")
    return number


def _check_port(option: str, value: t.Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ProbeConfigError(f"{option}: {value!r} is not a TCP port; accepted: 1-65535")
    return value


def _check_file(option: str, path: t.Optional[str], directory_ok: bool = False) -> t.Optional[str]:
    if path is None:
        return None
    if not isinstance(path, str) or not path:
        raise ProbeConfigError(f"{option}: {path!r} is not a path")
    if not (os.path.isfile(path) or (directory_ok and os.path.isdir(path))):
        raise ProbeConfigError(
            "{}: {!r} does not exist or is not a {}".format(
                option, path, "file or directory" if directory_ok else "file"))
    if not os.access(path, os.R_OK):
        raise ProbeConfigError(f"{option}: {path!r} is not readable")
    return path


def _check_expected_issuer(value: t.Any) -> t.Optional[IssuerSpec]:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ProbeConfigError(f"expected_issuer: {value!r} is empty; accepted: {ISSUER_FORMS}")
    try:
        return parse_expected_issuer(value)
    except ValueError as exc:
        raise ProbeConfigError(
            f"expected_issuer: {value!r} is not accepted ({exc}); accepted: {ISSUER_FORMS}") from None


def _check_inspection_issuers(value: t.Any) -> t.Optional[t.List[str]]:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise ProbeConfigError(f"inspection_issuers: {value!r} is not a list of CA names ([] turns the check off)")
    for name in value:
        if not isinstance(name, str) or not name.strip():
            raise ProbeConfigError(
                f"inspection_issuers: {name!r} is not a CA name; accepted: non-empty names compared with the CN, O "
                "and OU of each CA in the chain (case and spacing ignored, * and ? as wildcards)")
    return [name.strip() for name in value]


def new_client_id() -> str:
    return _epns.CLIENT_ID_PREFIX + secrets.token_hex(4)


def _refuse_password() -> bytes:
    # Without a callback OpenSSL would prompt on a terminal for an encrypted key and hang.
    return b""


def build_ssl_context(verify: bool, ca_path: t.Optional[str], client_cert: t.Optional[str],
                      client_key: t.Optional[str]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if verify:
        try:
            if ca_path and os.path.isdir(ca_path):
                ctx.load_verify_locations(capath=ca_path)
            elif ca_path:
                ctx.load_verify_locations(cafile=ca_path)
            else:
                ctx.load_default_certs()
        except (ssl.SSLError, OSError) as exc:
            raise ProbeConfigError(
                f"ca_path: {ca_path!r} holds no usable PEM CA certificates ({exc})") from None
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if client_cert:
        try:
            ctx.load_cert_chain(client_cert, client_key, password=_refuse_password)
        except (ssl.SSLError, OSError) as exc:
            raise ProbeConfigError(
                f"client_cert/client_key: {client_cert!r} / {client_key!r} cannot be loaded as a PEM "
                "certificate and its "
                f"unencrypted private key ({exc})") from None
    return ctx


@dataclass
class ProbePlan:
    """Validated, normalised settings plus the objects built from them."""

    settings: ProbeOptions
    server_name: str
    proxies: t.List[ProxySpec]
    client_id: str
    keepalive: int
    ping_interval: float
    context: ssl.SSLContext
    look_context: ssl.SSLContext
    issuer_spec: t.Optional[IssuerSpec] = None
    inspection_names: t.Tuple[InspectionName, ...] = ()
    trust: t.Optional[TrustStore] = None
    sinkholes: t.List[_dns.Network] = field(default_factory=list)
    # The plan of the server path's TLS stage (its own trust and name), or None without eset_server.
    server: t.Optional[ProbePlan] = None


# Connecting to 0.0.0.0 or :: reaches this host itself, so no list may make them usable.
_ALWAYS_SINKHOLES = ("0.0.0.0/8", "::/128")


def _check_sinkholes(values: t.Optional[t.List[str]]) -> t.List[_dns.Network]:
    if values is None:
        values = list(_dns.DEFAULT_SINKHOLES)
    if not isinstance(values, (list, tuple)):
        raise ProbeConfigError(f"dns_sinkhole_addresses: {values!r} must be a list of addresses or CIDRs")
    try:
        return _dns.parse_sinkholes([*_ALWAYS_SINKHOLES, *values])
    except ValueError as exc:
        raise ProbeConfigError(f"dns_sinkhole_addresses: {exc}; accepted: IPv4/IPv6 addresses and CIDRs "
                               "such as 146.112.61.104 or 10.0.0.0/8") from None


def _check_ping_interval(value: t.Any, hold_seconds: float) -> float:
    """The gap between pings while holding (the whole hold when not given)."""
    if value is None:
        return hold_seconds
    if not hold_seconds:
        raise ProbeConfigError(
            f"ping_interval: {value!r} only applies while holding; set hold_seconds as well")
    ping_interval = _check_seconds("ping_interval", value)
    if ping_interval > hold_seconds:
        raise ProbeConfigError(
            f"ping_interval: {ping_interval:g} is longer than hold_seconds ({hold_seconds:g}); "
            "accepted: more than 0 up to "
            "hold_seconds")
    if hold_seconds / ping_interval > MAX_PINGS:
        raise ProbeConfigError(
            f"ping_interval: {ping_interval:g} would send more than {MAX_PINGS} pings in "
            f"{hold_seconds:g} seconds")
    return ping_interval


def prepare(settings: ProbeOptions) -> ProbePlan:
    _check_hostname("host", settings.host, "primary_port")
    server_name = _check_hostname("server_name", settings.server_name or settings.host)
    _check_port("primary_port", settings.primary_port)
    _check_port("fallback_port", settings.fallback_port)
    if settings.primary_port == settings.fallback_port:
        raise ProbeConfigError(
            f"primary_port and fallback_port are both {settings.primary_port}; they must differ")
    proxies: t.List[ProxySpec] = []
    for url in settings.proxies or []:
        spec = parse_proxy_url(url)
        if spec.url not in [p.url for p in proxies]:
            proxies.append(spec)
    if not settings.direct and not proxies:
        raise ProbeConfigError("nothing to probe: direct is false and proxies is empty")
    if settings.address_family not in ADDRESS_FAMILIES:
        raise ProbeConfigError(
            "address_family: {!r} is not one of {}".format(settings.address_family, ", ".join(ADDRESS_FAMILIES)))
    settings.timeout = _check_seconds("timeout", settings.timeout)
    settings.connect_timeout = _check_seconds("connect_timeout", settings.connect_timeout)
    settings.hold_seconds = _check_seconds("hold_seconds", settings.hold_seconds, allow_zero=True)
    if settings.hold_seconds and settings.hold_seconds >= settings.timeout:
        raise ProbeConfigError(
            f"hold_seconds: {settings.hold_seconds:g} must be less than timeout ({settings.timeout:g}), which bounds "
            "the whole call; raise "
            "timeout to at least hold_seconds plus a few connect_timeouts")
    ping_interval = _check_ping_interval(settings.ping_interval, settings.hold_seconds)
    # The broker may drop a client silent for 1.5 x keepalive, so keep it well above the gap
    # between our pings, or the hold would measure the broker instead of the network.
    keepalive = min(65535, max(60, math.ceil(ping_interval) * 2))
    issuer_spec = _check_expected_issuer(settings.expected_issuer)
    names = inspection_names(_check_inspection_issuers(settings.inspection_issuers))
    _check_file("ca_path", settings.ca_path, directory_ok=True)
    _check_file("client_cert", settings.client_cert)
    _check_file("client_key", settings.client_key)
    if settings.client_key and not settings.client_cert:
        raise ProbeConfigError(f"client_key: {settings.client_key!r} given without client_cert")
    client_id = settings.mqtt_client_id if settings.mqtt_client_id is not None else new_client_id()
    if not isinstance(client_id, str) or not _CLIENT_ID_RE.match(client_id):
        raise ProbeConfigError(
            f"mqtt_client_id: {client_id!r} is not accepted; use 1-{_epns.CLIENT_ID_MAX} characters "
            "from A-Z, a-z, 0-9, '-' and '_' (the identifiers every MQTT 3.1.1 broker must accept)")
    context = build_ssl_context(settings.validate_certs, settings.ca_path, settings.client_cert, settings.client_key)
    look_context = build_ssl_context(False, None, None, None)
    # With ca_path the user chose the trust themselves: where its anchors came from says nothing.
    trust = TrustStore(context, system_store=settings.validate_certs and not settings.ca_path)
    plan = ProbePlan(settings, server_name, proxies, client_id, keepalive, ping_interval, context,
                     look_context, issuer_spec, names, trust, _check_sinkholes(settings.dns_sinkhole_addresses))
    plan.server = _server_plan(plan)
    return plan


def _server_plan(plan: ProbePlan) -> t.Optional[ProbePlan]:
    """The plan of the server path: only the ESET PROTECT CA is trusted, and no EPNS pin or client certificate
    applies. The host name is checked by _server, not by OpenSSL (ESET's default certificate names host "*")."""
    settings = plan.settings
    if settings.eset_server is None:
        if settings.eset_server_ca_path is not None:
            raise ProbeConfigError(
                f"eset_server_ca_path: {settings.eset_server_ca_path!r} given without eset_server; give the ESET "
                "PROTECT server's host name or address as the agents were installed with it")
        return None
    host = _check_hostname("eset_server", settings.eset_server, "eset_server_port")
    _check_port("eset_server_port", settings.eset_server_port)
    if settings.eset_server_ca_path is None:
        raise ProbeConfigError(
            f"eset_server: {host!r} needs eset_server_ca_path, the PEM file of the ESET PROTECT server's "
            "certification authority (console: More > Certification Authorities, export the public key); the "
            "agent trusts only that CA, so the probe verifies the server against it")
    _check_file("eset_server_ca_path", settings.eset_server_ca_path, directory_ok=True)
    try:
        context = build_ssl_context(True, settings.eset_server_ca_path, None, None)
    except ProbeConfigError as exc:
        raise ProbeConfigError(str(exc).replace("ca_path:", "eset_server_ca_path:", 1)) from None
    # The chain is still verified against the server's CA (CERT_REQUIRED); the host name is checked by
    # _server.ServerTlsStage instead, because OpenSSL refuses ESET's default server certificate for host "*".
    context.check_hostname = False
    server_settings = replace(settings, host=host, server_name=host, validate_certs=True,
                              ca_path=settings.eset_server_ca_path, expected_issuer=None, client_cert=None,
                              client_key=None, hold_seconds=0.0)
    return ProbePlan(server_settings, host, plan.proxies, plan.client_id, plan.keepalive, plan.ping_interval,
                     context, plan.look_context, None, plan.inspection_names, TrustStore(context, system_store=False),
                     [])
