# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The staged EPNS reachability probe: paths, stages, classification and verdict.
# Standard library only; runs on managed hosts with Python 3.8+.
#
# Timing model: one overall deadline for the call, and a per-stage deadline (connect_timeout)
# inside it. Every blocking operation gets a socket timeout computed from the nearer of the two,
# so no peer behaviour can make a stage or the call overrun. Paths and addresses run in daemon
# threads; whatever has not finished when the overall deadline comes is reported as `timeout`
# and left behind (it ends by itself moments later, because its own timeouts are bounded too).
from __future__ import annotations

import errno
import math
import os
import re
import secrets
import socket
import ssl
import threading
import time
import typing as t
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ansible_collections.protectnet.epns.plugins.module_utils import _epns as E
from ansible_collections.protectnet.epns.plugins.module_utils._mqtt import (
    CONNACK,
    DISCONNECT,
    PINGREQ,
    PINGRESP_TYPE,
    MqttCodecError,
    Packet,
    encode_connect,
    parse_connack,
    parse_pingresp,
    split_packet,
)
from ansible_collections.protectnet.epns.plugins.module_utils._x509 import (
    Certificate,
    X509Error,
    certificates_from_tls_handshake,
    parse_certificate,
)

Result = t.Dict[str, t.Any]

ADDRESS_FAMILIES = ("any", "ipv4", "ipv6")
MAX_TIMEOUT = 3600.0
MAX_PINGS = 1000
MAX_ADDRESSES = 16
MAX_PROXY_HEADER = 16 * 1024
# Kept back from the caller's timeout so the result can still be built and printed in time.
_DEADLINE_MARGIN = 0.05
_USER_AGENT = "protectnet-epns-probe"
_CLIENT_ID_RE = re.compile(r"^[0-9A-Za-z_-]{1," + str(E.CLIENT_ID_MAX) + r"}$")
_HOSTNAME_RE = re.compile(r"^[0-9A-Za-z_.:%-]{1,253}$")
_STATUS_RE = re.compile(r"^HTTP/1\.[01] ([0-9]{3})(?: .*)?$")

# TLS handshake message and alert numbers (RFC 8446 4, 6).
_HS_CERTIFICATE = 11
_HS_CERTIFICATE_REQUEST = 13
_CT_ALERT = 21
_CT_HANDSHAKE = 22
_ALERT_NAMES = {
    40: "handshake_failure", 42: "bad_certificate", 43: "unsupported_certificate",
    44: "certificate_revoked", 45: "certificate_expired", 46: "certificate_unknown",
    48: "unknown_ca", 49: "access_denied", 116: "certificate_required",
}


class ProbeConfigError(ValueError):
    """An option value the probe cannot work with; the message names the value and the rule."""


@dataclass
class ProbeSettings:
    host: str = E.HOST
    server_name: str | None = None
    primary_port: int = E.PRIMARY_PORT
    fallback_port: int = E.FALLBACK_PORT
    direct: bool = True
    proxies: list[str] = field(default_factory=list)
    address_family: str = "any"
    timeout: float = 10.0
    connect_timeout: float = 3.0
    hold_seconds: float = 0.0
    ping_interval: float | None = None
    ca_path: str | None = None
    validate_certs: bool = True
    expected_issuer: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    mqtt_client_id: str | None = None


class ProxySpec(t.NamedTuple):
    url: str
    host: str
    port: int


# --------------------------------------------------------------------------- validation

def redact_url(url: str) -> str:
    """The URL with any user info replaced, safe for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, tail = rest.partition("/")
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    return scheme + sep + netloc + slash + tail


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


def _check_hostname(option: str, value: str) -> str:
    if not isinstance(value, str) or not _HOSTNAME_RE.match(value) or value.startswith("-"):
        raise ProbeConfigError(
            f"{option}: {value!r} is not a host name or IP address (a name like epns.eset.com, without scheme, "
            "port or path)")
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


def _check_file(option: str, path: str | None, directory_ok: bool = False) -> str | None:
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


def new_client_id() -> str:
    return E.CLIENT_ID_PREFIX + secrets.token_hex(4)


def _refuse_password() -> bytes:
    # Without a callback OpenSSL would prompt on a terminal for an encrypted key and hang.
    return b""


def build_ssl_context(verify: bool, ca_path: str | None, client_cert: str | None,
                      client_key: str | None) -> ssl.SSLContext:
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

    settings: ProbeSettings
    server_name: str
    proxies: list[ProxySpec]
    client_id: str
    keepalive: int
    ping_interval: float
    context: ssl.SSLContext
    look_context: ssl.SSLContext


def prepare(settings: ProbeSettings) -> ProbePlan:
    s = settings
    _check_hostname("host", s.host)
    server_name = _check_hostname("server_name", s.server_name or s.host)
    _check_port("primary_port", s.primary_port)
    _check_port("fallback_port", s.fallback_port)
    if s.primary_port == s.fallback_port:
        raise ProbeConfigError(
            f"primary_port and fallback_port are both {s.primary_port}; they must differ")
    proxies: list[ProxySpec] = []
    for url in s.proxies or []:
        spec = parse_proxy_url(url)
        if spec.url not in [p.url for p in proxies]:
            proxies.append(spec)
    if not s.direct and not proxies:
        raise ProbeConfigError("nothing to probe: direct is false and proxies is empty")
    if s.address_family not in ADDRESS_FAMILIES:
        raise ProbeConfigError(
            "address_family: {!r} is not one of {}".format(s.address_family, ", ".join(ADDRESS_FAMILIES)))
    s.timeout = _check_seconds("timeout", s.timeout)
    s.connect_timeout = _check_seconds("connect_timeout", s.connect_timeout)
    s.hold_seconds = _check_seconds("hold_seconds", s.hold_seconds, allow_zero=True)
    if s.hold_seconds and s.hold_seconds >= s.timeout:
        raise ProbeConfigError(
            f"hold_seconds: {s.hold_seconds:g} must be less than timeout ({s.timeout:g}), which bounds "
            "the whole call; raise "
            "timeout to at least hold_seconds plus a few connect_timeouts")
    if s.ping_interval is None:
        ping_interval = s.hold_seconds
    else:
        if not s.hold_seconds:
            raise ProbeConfigError(
                f"ping_interval: {s.ping_interval!r} only applies while holding; set hold_seconds as well")
        ping_interval = _check_seconds("ping_interval", s.ping_interval)
        if ping_interval > s.hold_seconds:
            raise ProbeConfigError(
                f"ping_interval: {ping_interval:g} is longer than hold_seconds ({s.hold_seconds:g}); "
                "accepted: more than 0 up to "
                "hold_seconds")
        if s.hold_seconds / ping_interval > MAX_PINGS:
            raise ProbeConfigError(
                f"ping_interval: {ping_interval:g} would send more than {MAX_PINGS} pings in "
                f"{s.hold_seconds:g} seconds")
    # The broker may drop a client silent for 1.5 x keepalive, so keep it well above the gap
    # between our pings, or the hold would measure the broker instead of the network.
    keepalive = min(65535, max(60, math.ceil(ping_interval) * 2))
    if s.expected_issuer is not None and (not isinstance(s.expected_issuer, str)
                                          or not s.expected_issuer.strip()):
        raise ProbeConfigError(f"expected_issuer: {s.expected_issuer!r} must be a non-empty issuer CN or O")
    _check_file("ca_path", s.ca_path, directory_ok=True)
    _check_file("client_cert", s.client_cert)
    _check_file("client_key", s.client_key)
    if s.client_key and not s.client_cert:
        raise ProbeConfigError(f"client_key: {s.client_key!r} given without client_cert")
    client_id = s.mqtt_client_id if s.mqtt_client_id is not None else new_client_id()
    if not isinstance(client_id, str) or not _CLIENT_ID_RE.match(client_id):
        raise ProbeConfigError(
            f"mqtt_client_id: {client_id!r} is not accepted; use 1-{E.CLIENT_ID_MAX} characters from A-Z, a-z, 0-9, "
             "'-' and '_' (the identifiers every MQTT 3.1.1 broker must accept)")
    context = build_ssl_context(s.validate_certs, s.ca_path, s.client_cert, s.client_key)
    look_context = build_ssl_context(False, None, None, None)
    return ProbePlan(s, server_name, proxies, client_id, keepalive, ping_interval, context,
                     look_context)


# --------------------------------------------------------------------------- classification

def make_failure(cls: str, stage: str, message: str, raw_error: str = "",
                 elapsed_ms: int = 0) -> Result:
    return {
        "class": cls,
        "stage": stage,
        "message": message,
        "raw_error": raw_error,
        "elapsed_ms": elapsed_ms,
        "hint": E.FAILURE_CLASSES[cls].hint,
    }


_UNREACHABLE_ERRNOS = {
    errno.EHOSTUNREACH: "no route to the host (ICMP host unreachable or a reject rule)",
    errno.ENETUNREACH: "the network is unreachable (no route)",
    errno.EHOSTDOWN: "the host is down",
    errno.ENETDOWN: "the network is down",
    errno.EADDRNOTAVAIL: "no local address can reach it (e.g. no IPv6 address on this host)",
    errno.EPERM: "the local host is not allowed to send it (a local firewall rule)",
    errno.EACCES: "the local host is not allowed to send it (a local firewall rule)",
}


def classify_connect_error(exc: BaseException, target: str, via_proxy: bool,
                           deadline_bound: bool, seconds: float) -> tuple[str, str]:
    """(class, message) for a failed TCP connect to target (the EPNS address or the proxy)."""
    if isinstance(exc, socket.timeout) or getattr(exc, "errno", None) == errno.ETIMEDOUT:
        if deadline_bound:
            return E.TIMEOUT, f"the overall deadline ended the TCP connect to {target}"
        reason = f"no answer to the TCP connect within {seconds:g}s (packets dropped)"
        if via_proxy:
            return E.PROXY_UNREACHABLE, f"proxy {target}: {reason}"
        return E.TCP_TIMEOUT, f"{target}: {reason}"
    code = getattr(exc, "errno", None)
    if code == errno.ECONNREFUSED:
        reason = "connection refused (TCP reset)"
        if via_proxy:
            return E.PROXY_UNREACHABLE, f"proxy {target}: {reason}"
        return E.TCP_REFUSED, f"{target}: {reason}"
    reason = _UNREACHABLE_ERRNOS.get(code or 0, f"connect failed ({exc})")
    if via_proxy:
        return E.PROXY_UNREACHABLE, f"proxy {target}: {reason}"
    return E.TCP_UNREACHABLE, f"{target}: {reason}"


def issuer_matches(cert: Certificate, expected: str) -> bool:
    """expected_issuer matches when it equals, ignoring case and outer spaces, any CN or O
    attribute of the leaf certificate's issuer."""
    want = expected.strip().casefold()
    values = cert.attribute("issuer", "CN") + cert.attribute("issuer", "O")
    return any(value.strip().casefold() == want for value in values)


def _stage_rank(stage: str) -> int:
    return E.STAGES.index(stage) if stage in E.STAGES else -1


def summarize_path(attempts: list[Result]) -> tuple[bool, bool, Result | None, str | None]:
    """(ok, proven_by_auth, failure, note) of a path from its attempts' results."""
    full = [a for a in attempts if a["ok"] and not a["proven_by_auth"]]
    auth = [a for a in attempts if a["ok"] and a["proven_by_auth"]]
    failed = [a for a in attempts if not a["ok"]]
    note = None
    if full:
        partial = [a for a in attempts if a not in full]
        if partial:
            note = "; ".join(
                "{} failed ({})".format(a["address"], a["failure"]["class"] if a["failure"] else "?")
                for a in partial) + "; {} works".format(", ".join(a["address"] for a in full))
        return True, False, None, note
    if auth:
        first = auth[0]
        note = (
            "TLS with the genuine EPNS server was verified before the broker asked for credentials "
            "(%s): the network path works; give client_cert and client_key to test the MQTT "
            "session itself." % (first["failure"]["class"] if first["failure"] else "auth"))
        return True, True, first["failure"], note
    if not attempts:
        return False, False, None, None
    # The attempt that got furthest tells the most about where the path breaks.
    best = max(failed, key=lambda a: _stage_rank(a["failure"]["stage"] if a["failure"] else ""))
    return False, False, best["failure"], None


def compute_verdict(paths: list[Result], dns: Result | None = None
                    ) -> tuple[str, str, str | None]:
    """(verdict, verdict_reason, working_fallback) from the path results."""
    primary_ok = [p for p in paths if p["role"] == "primary" and p["ok"]]
    fallback_ok = [p for p in paths if p["role"] == "fallback" and p["ok"]]
    if primary_ok:
        best = next((p for p in primary_ok if not p["proven_by_auth"]), primary_ok[0])
        how = " (proven by the broker's request for credentials)" if best["proven_by_auth"] else ""
        others = [p["id"] for p in primary_ok if p is not best]
        also = "; also {}".format(", ".join(others)) if others else ""
        return E.VERDICT_REACHABLE, "{} works{}{}.".format(best["id"], how, also), None

    def why(p: Result) -> str:
        f = p.get("failure")
        return "{}: {}".format(p["id"], f["class"] if f else "not tried")

    primary_failed = [why(p) for p in paths if p["role"] == "primary"]
    if fallback_ok:
        fb = fallback_ok[0]
        return (
            E.VERDICT_DEGRADED,
            "Only the fallback {} works ({}); {}.".format(
                fb["id"], "; ".join(primary_failed) or "no primary path probed", E.DEGRADED_WHY),
            fb["id"],
        )
    if dns is not None and dns.get("failure") and not any(p.get("proxy") for p in paths):
        return (E.VERDICT_UNREACHABLE,
                "EPNS is unreachable: {}.".format(dns["failure"]["message"]), None)
    return (E.VERDICT_UNREACHABLE,
            "No path reaches EPNS ({}).".format("; ".join(why(p) for p in paths)), None)


def verdict_fails(verdict: str, fail_on: str) -> bool:
    if fail_on == "never":
        return False
    return E.VERDICTS.index(verdict) >= E.VERDICTS.index(fail_on)


# --------------------------------------------------------------------------- the engine

def _ms(seconds: float) -> int:
    return round(seconds * 1000)


_UNEXPECTED_CLASS = {
    "tcp": E.TCP_UNREACHABLE, "proxy_connect": E.PROXY_BAD_RESPONSE,
    "tls": E.TLS_HANDSHAKE_FAILED, "mqtt": E.MQTT_BAD_RESPONSE, "hold": E.IDLE_DROPPED,
}


class _Fail(Exception):
    def __init__(self, cls: str, message: str, raw_error: str = "") -> None:
        super().__init__(message)
        self.cls = cls
        self.message = message
        self.raw_error = raw_error


class _Lookup:
    """getaddrinfo in a daemon thread, so a hanging resolver cannot hold the deadline."""

    def __init__(self, name: str, family: str) -> None:
        self.name = name
        self.family = family
        self.done = threading.Event()
        self.addresses: list[tuple[int, t.Any]] = []
        self.error: BaseException | None = None
        self.started = time.monotonic()
        self.elapsed = 0.0

    def start(self) -> _Lookup:
        threading.Thread(target=self._run, name="epns-dns", daemon=True).start()
        return self

    def _run(self) -> None:
        af = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}.get(self.family, socket.AF_UNSPEC)
        try:
            infos = socket.getaddrinfo(self.name, None, af, socket.SOCK_STREAM)
            seen = set()
            for fam, _type, _proto, _canon, sockaddr in infos:
                if fam not in (socket.AF_INET, socket.AF_INET6) or sockaddr[0] in seen:
                    continue
                seen.add(sockaddr[0])
                self.addresses.append((fam, sockaddr))
        except (OSError, UnicodeError) as exc:
            self.error = exc
        self.elapsed = time.monotonic() - self.started
        self.done.set()


def _family_name(af: int) -> str:
    return "ipv6" if af == socket.AF_INET6 else "ipv4"


class _TlsRecorder:
    """What the TLS handshake showed us, seen through OpenSSL's message callback."""

    def __init__(self) -> None:
        self.cert_requested = False
        self.version: str | None = None
        self.leaf_der: bytes | None = None
        self.peer_alerts: list[int] = []


class _Attempt:
    """One connection attempt to one address; written by its worker, read by the main thread."""

    def __init__(self, address: str, family: str, client_id: str = "") -> None:
        self.client_id = client_id
        self.lock = threading.Lock()
        self.address = address
        self.family = family
        self.started = time.monotonic()
        self.finished: float | None = None
        self.stages: list[Result] = []
        self.stage: str | None = None
        self.stage_started = self.started
        self.failure: Result | None = None
        self.ok = False
        self.proven_by_auth = False
        self.proxy_status: str | None = None
        self.tls: Result | None = None
        self.mqtt: Result | None = None
        self.abandoned = False

    def begin(self, stage: str) -> None:
        with self.lock:
            self.stage = stage
            self.stage_started = time.monotonic()

    def stage_ok(self, detail: Result) -> None:
        with self.lock:
            if self.abandoned or self.stage is None:
                return
            self.stages.append({"name": self.stage, "ok": True,
                                "elapsed_ms": _ms(time.monotonic() - self.stage_started),
                                "detail": detail})
            self.stage = None

    def fail(self, cls: str, message: str, raw_error: str = "", detail: Result | None = None,
             proven_by_auth: bool = False) -> None:
        with self.lock:
            if self.abandoned or self.finished is not None:
                return
            stage = self.stage or "tcp"
            elapsed = _ms(time.monotonic() - self.stage_started)
            self.stages.append({"name": stage, "ok": False, "elapsed_ms": elapsed,
                                "detail": detail or {}})
            self.failure = make_failure(cls, stage, message, raw_error, elapsed)
            self.ok = proven_by_auth
            self.proven_by_auth = proven_by_auth
            self.stage = None
            self.finished = time.monotonic()

    def succeed(self) -> None:
        with self.lock:
            if not self.abandoned and self.finished is None:
                self.ok = True
                self.finished = time.monotonic()

    def abandon(self) -> None:
        """Called by the main thread at the deadline: freeze whatever is unfinished as timeout."""
        with self.lock:
            if self.finished is not None:
                return
            stage = self.stage or "tcp"
            elapsed = _ms(time.monotonic() - self.stage_started)
            self.stages.append({"name": stage, "ok": False, "elapsed_ms": elapsed, "detail": {}})
            self.failure = make_failure(
                E.TIMEOUT, stage, f"the overall deadline ended the {stage} stage",
                "deadline", elapsed)
            self.finished = time.monotonic()
            self.abandoned = True

    def result(self) -> Result:
        with self.lock:
            end = self.finished if self.finished is not None else time.monotonic()
            return {
                "address": self.address,
                "family": self.family,
                "ok": self.ok,
                "proven_by_auth": self.proven_by_auth,
                "failure": self.failure,
                "elapsed_ms": _ms(end - self.started),
                "stages": list(self.stages),
                "proxy_status": self.proxy_status,
                "tls": self.tls,
                "mqtt": self.mqtt,
            }


class _Path:
    def __init__(self, port: int, role: str, proxy: ProxySpec | None, index: int = 0) -> None:
        self.index = index
        self.port = port
        self.role = role
        self.proxy = proxy
        self.id = f"{port} {'via ' + proxy.url if proxy else 'direct'}"
        self.lock = threading.Lock()
        self.attempts: list[_Attempt] = []
        self.closed = False

    def add(self, attempt: _Attempt) -> bool:
        with self.lock:
            if self.closed:
                return False
            self.attempts.append(attempt)
            return True


def _printable(raw: bytes, limit: int = 200) -> str:
    text = raw.decode("latin-1")
    text = "".join(ch if 0x20 <= ord(ch) < 0x7F else f"\\x{ord(ch):02x}" for ch in text)
    return text if len(text) <= limit else text[:limit] + "..."


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Probe:
    def __init__(self, plan: ProbePlan) -> None:
        self.plan = plan
        self.s = plan.settings
        self.started = time.monotonic()
        margin = min(_DEADLINE_MARGIN, self.s.timeout * 0.05)
        self.deadline = self.started + self.s.timeout - margin
        self._recorders: dict[int, _TlsRecorder] = {}
        self._recorders_lock = threading.Lock()
        # A private but long-standing (3.8+) hook: it shows the certificate and alerts of a
        # handshake that fails. Without it, _second_look fetches the certificate instead.
        try:
            plan.context._msg_callback = self._on_tls_message  # type: ignore[attr-defined]
        except (AttributeError, TypeError, ValueError):
            pass

    # -- helpers -----------------------------------------------------------------------------

    def client_id_for(self, n: int) -> str:
        """The MQTT client id of the n-th session (path index x MAX_ADDRESSES + address index).

        A broker ends the older of two sessions with the same client id, so concurrent attempts
        would cut each other off (seen as a false idle_dropped while holding). The first session
        uses the id as given, so an operator's id reaches the broker unchanged at least once.
        """
        base = self.plan.client_id
        if n == 0:
            return base
        if self.s.mqtt_client_id is None:
            return new_client_id()
        suffix = f"-{n}"
        return base[:E.CLIENT_ID_MAX - len(suffix)] + suffix

    def _stage_deadline(self) -> tuple[float, bool]:
        """(deadline of a stage starting now, whether the overall deadline is the binding one)."""
        own = time.monotonic() + self.s.connect_timeout
        if own >= self.deadline:
            return self.deadline, True
        return own, False

    @staticmethod
    def _remaining(deadline: float) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        return left

    def _on_tls_message(self, conn: t.Any, direction: t.Any, version: t.Any, content_type: t.Any,
                        msg_type: t.Any, data: bytes) -> None:
        # An exception escaping here would surface as an obscure SSL error mid-handshake.
        try:
            if str(direction) != "read" and getattr(direction, "value", None) != "read":
                return
            with self._recorders_lock:
                rec = self._recorders.get(id(conn))
            if rec is None:
                return
            ctype = int(content_type)
            if ctype == _CT_HANDSHAKE and data:
                if data[0] == _HS_CERTIFICATE_REQUEST:
                    rec.cert_requested = True
                elif data[0] == _HS_CERTIFICATE and rec.leaf_der is None:
                    tls13 = int(version) >= 0x0304
                    rec.version = "TLSv1.3" if tls13 else "TLSv1.2"
                    certs = certificates_from_tls_handshake(bytes(data), tls13)
                    if certs:
                        rec.leaf_der = certs[0]
            elif ctype == _CT_ALERT and len(data) >= 2:
                rec.peer_alerts.append(data[1])
        except Exception:  # noqa: S110 - see above
            pass

    # -- orchestration -----------------------------------------------------------------------

    def run(self) -> Result:
        s = self.s
        paths: list[_Path] = []
        if s.direct:
            paths.append(_Path(s.primary_port, "primary", None))
            paths.append(_Path(s.fallback_port, "fallback", None))
        for proxy in self.plan.proxies:
            paths.append(_Path(s.primary_port, "primary", proxy))
            paths.append(_Path(s.fallback_port, "fallback", proxy))

        dns = _Lookup(s.host, s.address_family).start() if s.direct else None
        proxy_lookups = {p.host: _Lookup(p.host, s.address_family).start()
                         for p in self.plan.proxies}
        for index, path in enumerate(paths):
            path.index = index
        lookups: dict[str, _Lookup] = {}
        for path in paths:
            lookup = dns if path.proxy is None else proxy_lookups[path.proxy.host]
            assert lookup is not None  # direct paths exist only when dns was started
            lookups[path.id] = lookup
        threads = []
        for path in paths:
            th = threading.Thread(target=self._run_path, args=(path, lookups[path.id]),
                                  name="epns-path", daemon=True)
            th.start()
            threads.append(th)
        for th in threads:
            th.join(max(0.0, self.deadline - time.monotonic()))
        path_results = [self._finish_path(path, lookups[path.id]) for path in paths]
        dns_result = self._dns_result(dns)
        verdict, reason, working_fallback = compute_verdict(path_results, dns_result)
        return {
            "verdict": verdict,
            "verdict_reason": reason,
            "working_fallback": working_fallback,
            "host": s.host,
            "elapsed_ms": _ms(time.monotonic() - self.started),
            "dns": dns_result,
            "paths": path_results,
        }

    def _run_path(self, path: _Path, lookup: _Lookup) -> None:
        lookup.done.wait(max(0.0, self.deadline - time.monotonic()))
        if not lookup.done.is_set() or lookup.error or not lookup.addresses:
            return
        addresses = lookup.addresses[:1] if path.proxy else lookup.addresses[:MAX_ADDRESSES]
        workers = []
        for i, (af, sockaddr) in enumerate(addresses):
            attempt = _Attempt(sockaddr[0], _family_name(af),
                               self.client_id_for(path.index * MAX_ADDRESSES + i))
            if not path.add(attempt):
                return
            if len(addresses) == 1:
                self._run_attempt(path, attempt, af, sockaddr)
            else:
                th = threading.Thread(target=self._run_attempt,
                                      args=(path, attempt, af, sockaddr),
                                      name="epns-attempt", daemon=True)
                th.start()
                workers.append(th)
        for th in workers:
            th.join(max(0.0, self.deadline - time.monotonic()))

    def _dns_result(self, dns: _Lookup | None) -> Result:
        if dns is None:
            # The proxy resolves the name on proxy-only probes; the host's resolver is not asked.
            return {"ok": None, "addresses": [], "ipv4": [], "ipv6": [], "elapsed_ms": 0,
                    "failure": None}
        failure = self._lookup_failure(dns, E.DNS_NO_ANSWER, "dns", s_name=self.s.host)
        addrs = [sa[0] for _af, sa in dns.addresses] if dns.done.is_set() else []
        return {
            "ok": failure is None,
            "addresses": addrs,
            "ipv4": [sa[0] for af, sa in dns.addresses if af == socket.AF_INET],
            "ipv6": [sa[0] for af, sa in dns.addresses if af == socket.AF_INET6],
            "elapsed_ms": _ms(dns.elapsed if dns.done.is_set()
                              else time.monotonic() - dns.started),
            "failure": failure,
        }

    def _lookup_failure(self, lookup: _Lookup, cls: str, stage: str, s_name: str
                        ) -> Result | None:
        if not lookup.done.is_set():
            return make_failure(E.TIMEOUT, stage,
                                f"the resolver gave no answer for {s_name} before the overall deadline",
                                "deadline", _ms(time.monotonic() - lookup.started))
        elapsed = _ms(lookup.elapsed)
        if lookup.error is not None:
            return make_failure(cls, stage, f"{s_name} does not resolve: {lookup.error}",
                                str(lookup.error), elapsed)
        if not lookup.addresses:
            family = {"ipv4": "IPv4 ", "ipv6": "IPv6 "}.get(self.s.address_family, "")
            return make_failure(cls, stage, f"{s_name} has no {family}address",
                                "no addresses", elapsed)
        return None

    def _finish_path(self, path: _Path, lookup: _Lookup) -> Result:
        with path.lock:
            path.closed = True
            attempts = list(path.attempts)
        for attempt in attempts:
            attempt.abandon()
        results = [a.result() for a in attempts]
        failure: Result | None
        note = None
        if path.proxy is not None:
            failure = self._lookup_failure(lookup, E.PROXY_UNREACHABLE, "dns",
                                           s_name=f"proxy host {path.proxy.host}")
        else:
            failure = self._lookup_failure(lookup, E.DNS_NO_ANSWER, "dns", s_name=self.s.host)
        if failure is not None:
            ok = proven = False
        elif not results:
            ok = proven = False
            failure = make_failure(E.TIMEOUT, "tcp", f"the overall deadline came before {path.id} "
                                   "was tried", "deadline", 0)
        else:
            ok, proven, failure, note = summarize_path(results)
        return {
            "id": path.id,
            "port": path.port,
            "role": path.role,
            "proxy": path.proxy.url if path.proxy else None,
            "ok": ok,
            "proven_by_auth": proven,
            "note": note,
            "failure": failure,
            "elapsed_ms": max([r["elapsed_ms"] for r in results] or [0]),
            "attempts": results,
        }

    # -- one attempt -------------------------------------------------------------------------

    def _run_attempt(self, path: _Path, att: _Attempt, af: int, sockaddr: t.Any) -> None:
        sock: socket.socket | None = None
        tls: ssl.SSLSocket | None = None
        try:
            sock = self._tcp(path, att, af, sockaddr)
            if path.proxy is not None:
                self._proxy_connect(path, att, sock)
            tls = self._tls(path, att, af, sockaddr, sock)
            if self._mqtt(att, tls) and self.s.hold_seconds > 0:
                self._hold(att, tls)
            att.succeed()
        except _Fail as exc:
            att.fail(exc.cls, exc.message, exc.raw_error)
        except Exception as exc:
            att.fail(_UNEXPECTED_CLASS.get(att.stage or "tcp", E.TCP_UNREACHABLE),
                     f"unexpected error in the probe: {exc}", repr(exc))
        finally:
            if tls is not None:
                self._forget(tls)
            self._close(tls, sock)

    def _close(self, tls: ssl.SSLSocket | None, sock: socket.socket | None) -> None:
        if tls is not None:
            try:
                tls.setblocking(False)
                # Sends close_notify without waiting for the peer's.
                tls.unwrap()
            except (OSError, ValueError):
                pass
            try:
                tls.close()
            except OSError:
                pass
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def _tcp(self, path: _Path, att: _Attempt, af: int, sockaddr: t.Any) -> socket.socket:
        att.begin("tcp")
        target_port = path.proxy.port if path.proxy else path.port
        addr = (sockaddr[0], target_port, *sockaddr[2:])
        shown = _authority(sockaddr[0], target_port)
        deadline, bound = self._stage_deadline()
        sock = socket.socket(af, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(self._remaining(deadline))
            sock.connect(addr)
        except OSError as exc:
            sock.close()
            cls, message = classify_connect_error(exc, shown, path.proxy is not None, bound,
                                                  self.s.connect_timeout)
            raise _Fail(cls, message, str(exc) or exc.__class__.__name__) from None
        try:
            local = sock.getsockname()
            detail = {"peer": shown, "local": _authority(local[0], local[1])}
        except OSError:
            detail = {"peer": shown}
        att.stage_ok(detail)
        return sock

    def _proxy_connect(self, path: _Path, att: _Attempt, sock: socket.socket) -> None:
        assert path.proxy is not None
        att.begin("proxy_connect")
        deadline, bound = self._stage_deadline()
        target = _authority(self.s.host, path.port)
        request = (f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: {_USER_AGENT}\r\n\r\n").encode("ascii")
        try:
            sock.settimeout(self._remaining(deadline))
            sock.sendall(request)
            status, extra = read_http_head(sock, deadline)
        except _Fail as exc:
            if exc.cls == E.PROXY_BAD_RESPONSE and exc.raw_error == "timeout" and bound:
                raise _Fail(E.TIMEOUT, "the overall deadline ended the wait for the proxy's "
                            f"answer to CONNECT {target}", "deadline") from None
            raise
        except OSError as exc:
            raise _Fail(E.PROXY_BAD_RESPONSE,
                        f"the proxy connection failed during CONNECT {target}: {exc}",
                        str(exc)) from None
        att.proxy_status = status
        code = int(status.split()[1])
        if not 200 <= code < 300:
            if code == 407:
                msg = (f"the proxy demands authentication ({status}); EPNS does not support proxy "
                       f"authentication, so the proxy must allow CONNECT {target} without it")
            elif code in (403, 405):
                msg = f"the proxy forbids CONNECT {target} ({status})"
            elif code in (502, 503, 504):
                msg = (f"the proxy could not connect to {target} itself ({status}): its DNS, route or "
                       "firewall blocks it")
            else:
                msg = f"the proxy refused CONNECT {target} ({status})"
            raise _Fail(E.PROXY_REFUSED, msg, status)
        if extra:
            raise _Fail(E.PROXY_BAD_RESPONSE,
                        f"the proxy sent {len(extra)} bytes after its {status} header, before any TLS",
                        _printable(extra, 60))
        att.stage_ok({"status": status, "http_status": code})

    def _tls(self, path: _Path, att: _Attempt, af: int, sockaddr: t.Any,
             sock: socket.socket) -> ssl.SSLSocket:
        att.begin("tls")
        deadline, bound = self._stage_deadline()
        rec = _TlsRecorder()
        tls = self.plan.context.wrap_socket(sock, server_hostname=self.plan.server_name,
                                            do_handshake_on_connect=False)
        with self._recorders_lock:
            self._recorders[id(tls)] = rec
        try:
            self._handshake(path, att, af, sockaddr, tls, rec, deadline, bound)
        except BaseException:
            self._forget(tls)
            tls.close()
            raise
        return tls

    def _check_issuer(self, cert: Certificate | None, reason: str, raw: str) -> None:
        if cert is None or not self.s.expected_issuer:
            return
        if not issuer_matches(cert, self.s.expected_issuer):
            raise _Fail(E.TLS_INTERCEPTED,
                        f"the certificate for {self.plan.server_name} was issued by {cert.issuer_text()}, "
                        f"not by {self.s.expected_issuer!r}: TLS is intercepted{reason}", raw)

    def _handshake(self, path: _Path, att: _Attempt, af: int, sockaddr: t.Any,
                   tls: ssl.SSLSocket, rec: _TlsRecorder, deadline: float, bound: bool) -> None:
        name = self.plan.server_name
        try:
            tls.settimeout(self._remaining(deadline))
            tls.do_handshake()
        except ssl.SSLCertVerificationError as exc:
            der = rec.leaf_der or self._second_look(path, af, sockaddr, deadline)
            cert = self._describe(att, der, rec.version, None, verified=False)
            reason = getattr(exc, "verify_message", "") or str(exc)
            self._check_issuer(cert, f" ({reason})", str(exc))
            raise _Fail(E.TLS_UNTRUSTED, "the certificate for {} (issued by {}) is not trusted: "
                        "{}".format(name, cert.issuer_text() if cert else "an unknown issuer",
                                reason), str(exc)) from None
        except socket.timeout as exc:
            if bound:
                raise _Fail(E.TIMEOUT, "the overall deadline ended the TLS handshake",
                            str(exc)) from None
            raise _Fail(E.TLS_HANDSHAKE_FAILED,
                        f"no complete TLS handshake within {self.s.connect_timeout:g}s", str(exc)) from None
        except (ssl.SSLError, OSError) as exc:
            if rec.cert_requested and rec.peer_alerts:
                # TLS 1.2: the client had already accepted the server's certificate (it would
                # have aborted with its own alert otherwise) when the server gave up on ours.
                cert = self._describe(att, rec.leaf_der, rec.version, None,
                                      verified=self.s.validate_certs and bool(rec.leaf_der))
                self._check_issuer(cert, "", str(exc))
                self._auth_failure(att, rec, str(exc), during_handshake=True)
            raise _Fail(E.TLS_HANDSHAKE_FAILED, f"TLS handshake with {name} failed: {_ssl_reason(exc)}",
                        str(exc)) from None
        cipher = (tls.cipher() or ("",))[0]
        cert = self._describe(att, tls.getpeercert(binary_form=True), tls.version(), cipher,
                              verified=self.s.validate_certs)
        self._check_issuer(cert, " by an inspection CA this host trusts"
                           if self.s.validate_certs else "", "issuer mismatch")
        att.stage_ok({"version": tls.version(), "cipher": cipher,
                      "verified": self.s.validate_certs,
                      "client_cert_requested": rec.cert_requested})

    def _forget(self, tls: ssl.SSLSocket) -> None:
        with self._recorders_lock:
            self._recorders.pop(id(tls), None)

    def _describe(self, att: _Attempt, der: bytes | None, tls_version: str | None,
                  cipher: str | None, verified: bool) -> Certificate | None:
        info: Result = {"version": tls_version, "cipher": cipher, "subject": None,
                        "issuer": None, "sans": [], "not_after": None, "sha256": None,
                        "verified": verified}
        cert = None
        if der:
            try:
                cert = parse_certificate(der)
            except X509Error as exc:
                info["parse_error"] = str(exc)
            else:
                info.update(subject=cert.subject_text(), issuer=cert.issuer_text(),
                            sans=cert.sans, not_after=cert.not_after, sha256=cert.sha256)
        att.tls = info
        return cert

    def _auth_failure(self, att: _Attempt, rec: _TlsRecorder, raw: str,
                      during_handshake: bool) -> t.NoReturn:
        alerts = ", ".join(_ALERT_NAMES.get(a, str(a)) for a in rec.peer_alerts) or "none"
        if self.s.client_cert:
            message = (f"the server rejected our client certificate (alert: {alerts})")
        else:
            message = ("the server asked for a client certificate and ended the session without "
                       "one ({}, alert: {})".format(
                           "during the TLS 1.2 handshake" if during_handshake
                           else "after the TLS 1.3 handshake", alerts))
        proven = bool(self.s.validate_certs and att.tls and att.tls.get("verified"))
        att.fail(E.TLS_CLIENT_CERT_REQUIRED, message, raw, proven_by_auth=proven)
        raise _Fail(E.TLS_CLIENT_CERT_REQUIRED, message, raw)

    def _second_look(self, path: _Path, af: int, sockaddr: t.Any, deadline: float
                     ) -> bytes | None:
        """The certificate the server shows, fetched again without verification."""
        sock = socket.socket(af, socket.SOCK_STREAM)
        try:
            sock.settimeout(self._remaining(deadline))
            port = path.proxy.port if path.proxy else path.port
            sock.connect((sockaddr[0], port, *sockaddr[2:]))
            if path.proxy is not None:
                target = _authority(self.s.host, path.port)
                sock.sendall((f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n")
                             .encode("ascii"))
                read_http_head(sock, deadline)
            with self.plan.look_context.wrap_socket(
                    sock, server_hostname=self.plan.server_name,
                    do_handshake_on_connect=False) as tls:
                tls.settimeout(self._remaining(deadline))
                tls.do_handshake()
                return tls.getpeercert(binary_form=True)
        except (OSError, _Fail, ValueError):
            return None
        finally:
            sock.close()

    def _read_packet(self, tls: ssl.SSLSocket, buf: bytearray, deadline: float,
                     expect: int) -> Packet:
        """Next MQTT packet; raises socket.timeout, EOFError, MqttCodecError or OSError."""
        while True:
            split = split_packet(bytes(buf), expect=expect)
            if split is not None:
                packet, rest = split
                buf[:] = rest
                return packet
            tls.settimeout(self._remaining(deadline))
            _quickack(tls)
            chunk = tls.recv(4096)
            if not chunk:
                raise EOFError(f"connection closed after {len(buf)} bytes")
            buf.extend(chunk)

    def _mqtt(self, att: _Attempt, tls: ssl.SSLSocket) -> bool:
        att.begin("mqtt")
        deadline, bound = self._stage_deadline()
        client_id = att.client_id
        with self._recorders_lock:
            rec = self._recorders.get(id(tls)) or _TlsRecorder()
        buf = bytearray()
        try:
            tls.settimeout(self._remaining(deadline))
            tls.sendall(encode_connect(client_id, self.plan.keepalive))
            packet = self._read_packet(tls, buf, deadline, CONNACK)
            connack = parse_connack(packet)
        except socket.timeout as exc:
            if bound:
                raise _Fail(E.TIMEOUT, "the overall deadline ended the wait for CONNACK",
                            str(exc)) from None
            raise _Fail(E.MQTT_NO_CONNACK, "no CONNACK within {:g}s after CONNECT{}".format(
                self.s.connect_timeout,
                f" ({len(buf)} bytes of a packet arrived)" if buf else ""),
                str(exc)) from None
        except MqttCodecError as exc:
            raise _Fail(E.MQTT_BAD_RESPONSE, f"the answer to CONNECT is not a CONNACK: {exc}",
                        f"{exc}; first bytes: {_printable(bytes(buf[:32]))}") from None
        except (EOFError, OSError) as exc:
            ended = isinstance(exc, (EOFError, ConnectionError, ssl.SSLZeroReturnError,
                                     ssl.SSLEOFError))
            alert = isinstance(exc, ssl.SSLError) and "ALERT" in (
                getattr(exc, "reason", None) or "")
            if rec.cert_requested and (ended or alert) and not buf:
                self._auth_failure(att, rec, str(exc), during_handshake=False)
            if buf:
                raise _Fail(E.MQTT_BAD_RESPONSE, f"the connection ended inside a packet after {len(buf)} bytes",
                            str(exc)) from None
            if isinstance(exc, ssl.SSLError) and not ended and not alert:
                raise _Fail(E.MQTT_BAD_RESPONSE, f"the TLS stream broke after the handshake ({_ssl_reason(exc)}): "
                            "the peer or a device in between sent bytes that are not TLS records", str(exc)) from None
            why = _ssl_reason(exc) if isinstance(exc, ssl.SSLError) else str(exc) or exc.__class__.__name__
            raise _Fail(E.MQTT_NO_CONNACK, f"the server ended the session without CONNACK ({why})",
                        str(exc)) from None
        meaning = E.CONNACK_MEANINGS[connack.return_code]
        att.mqtt = {"return_code": connack.return_code, "meaning": meaning,
                    "session_present": connack.session_present}
        if connack.return_code != 0:
            verified = bool(att.tls and att.tls.get("verified"))
            proven = verified and connack.return_code in E.CONNACK_AUTH_CODES
            message = f"the broker refused the MQTT connection: {connack.return_code} {meaning}"
            att.fail(E.MQTT_REFUSED, message, f"CONNACK return code {connack.return_code}",
                     detail={"return_code": connack.return_code}, proven_by_auth=proven)
            self._send_quietly(tls, DISCONNECT)
            raise _Fail(E.MQTT_REFUSED, message)
        att.stage_ok({"return_code": 0, "keepalive": self.plan.keepalive, "client_id": client_id})
        if self.s.hold_seconds <= 0:
            self._send_quietly(tls, DISCONNECT)
        self._forget(tls)
        return True

    def _hold(self, att: _Attempt, tls: ssl.SSLSocket) -> None:
        att.begin("hold")
        start = time.monotonic()
        hold, interval = self.s.hold_seconds, self.plan.ping_interval
        times = []
        k = 1
        while k * interval < hold - 1e-6:
            times.append(k * interval)
            k += 1
        times.append(hold)
        pings = 0
        buf = bytearray()
        for at in times:
            idle_until = start + at
            try:
                # Waiting for readability, not sleeping: a cut shows up the moment it happens.
                self._idle(tls, min(idle_until, self.deadline), buf)
            except EOFError as exc:
                raise _Fail(E.IDLE_DROPPED, (f"the connection was closed after {time.monotonic() - start:.1f}s idle "
                                             f"({pings} pings answered)"),
                            str(exc)) from None
            except MqttCodecError as exc:
                raise _Fail(E.MQTT_BAD_RESPONSE, f"unexpected data while idle: {exc}",
                            str(exc)) from None
            except OSError as exc:
                raise _Fail(E.IDLE_DROPPED,
                            f"the connection was reset after {time.monotonic() - start:.1f}s idle ({exc})",
                            str(exc)) from None
            if idle_until > self.deadline:
                raise _Fail(E.TIMEOUT, f"the overall deadline ended the hold after {time.monotonic() - start:.1f}s",
                            "deadline")
            deadline, bound = self._stage_deadline()
            try:
                tls.settimeout(self._remaining(deadline))
                tls.sendall(PINGREQ)
                parse_pingresp(self._read_packet(tls, buf, deadline, PINGRESP_TYPE))
            except socket.timeout as exc:
                if bound:
                    raise _Fail(E.TIMEOUT, "the overall deadline ended the wait for PINGRESP",
                                str(exc)) from None
                raise _Fail(E.IDLE_DROPPED, f"no PINGRESP within {self.s.connect_timeout:g}s after {at:.1f}s idle: the "
                            "connection is silently dead",
                            str(exc)) from None
            except MqttCodecError as exc:
                raise _Fail(E.MQTT_BAD_RESPONSE, f"the answer to PINGREQ is not PINGRESP: {exc}", str(exc)) from None
            except (EOFError, OSError) as exc:
                raise _Fail(E.IDLE_DROPPED, f"the connection dropped at the ping after {at:.1f}s idle "
                            f"({exc or exc.__class__.__name__})", str(exc)) from None
            pings += 1
        self._send_quietly(tls, DISCONNECT)
        att.stage_ok({"seconds": hold, "ping_interval": interval, "pings": pings})

    def _idle(self, tls: ssl.SSLSocket, until: float, buf: bytearray) -> None:
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return
            tls.settimeout(left)
            try:
                chunk = tls.recv(4096)
            except socket.timeout:
                return
            if not chunk:
                raise EOFError("EOF")
            buf.extend(chunk)
            split = split_packet(bytes(buf))
            if split is not None:
                raise MqttCodecError(f"the broker sent {split[0].name} without being asked")

    @staticmethod
    def _send_quietly(tls: ssl.SSLSocket, data: bytes) -> None:
        try:
            tls.settimeout(0.2)
            tls.sendall(data)
        except (OSError, ValueError):
            pass


def _quickack(sock: socket.socket) -> None:
    # Brokers that leave Nagle on hold CONNACK until their TLS 1.3 session tickets are acked;
    # Linux would delay that ack by up to 40 ms. Quick-ack mode is one-shot, so set it per read.
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if quickack is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
        except OSError:
            pass


def _ssl_reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    if reason:
        return str(reason).lower().replace("_", " ")
    return str(exc) or exc.__class__.__name__


def read_http_head(sock: socket.socket, deadline: float) -> tuple[str, bytes]:
    """Read an HTTP response head: (status line, bytes after the head).

    Bounded in time (deadline) and size (MAX_PROXY_HEADER), and gives up as soon as the bytes
    cannot be HTTP, so a hostile or confused proxy cannot hold the probe.
    """
    buf = b""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            break
        probe = buf[:5]
        if probe != b"HTTP/"[:len(probe)]:
            raise _Fail(E.PROXY_BAD_RESPONSE, f"the proxy's answer is not HTTP: {_printable(buf[:40])!r}",
                        _printable(buf[:60]))
        if len(buf) > MAX_PROXY_HEADER:
            raise _Fail(E.PROXY_BAD_RESPONSE, f"the proxy's response head exceeds {MAX_PROXY_HEADER} bytes",
                        "header too large")
        left = deadline - time.monotonic()
        if left <= 0:
            raise _Fail(E.PROXY_BAD_RESPONSE, (f"no complete response head from the proxy in time ({len(buf)} bytes "
                                               "received)"), "timeout")
        sock.settimeout(left)
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            raise _Fail(E.PROXY_BAD_RESPONSE, (f"no complete response head from the proxy in time ({len(buf)} bytes "
                                               "received)"), "timeout") from None
        if not chunk:
            raise _Fail(E.PROXY_BAD_RESPONSE, "the proxy closed the connection %s" % (
                f"after {len(buf)} bytes without a complete response head" if buf
                else "without answering"), "EOF")
        buf += chunk
    head, extra = buf[:end], buf[end + 4:]
    status = head.split(b"\r\n", 1)[0].decode("latin-1")
    if not _STATUS_RE.match(status):
        shown = _printable(status.encode("latin-1"))
        raise _Fail(E.PROXY_BAD_RESPONSE, f"the proxy's status line is not HTTP/1.x: {shown!r}",
                    _printable(head[:60]))
    return _printable(status.encode("latin-1")), extra


def run_probe(settings: ProbeSettings) -> Result:
    """Validate settings, probe every path, and return the result (see docs/architecture.md).

    Raises ProbeConfigError for option values the probe cannot use; never for network trouble.
    """
    return Probe(prepare(settings)).run()
