# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# How the probe names what went wrong: failure records, the class of a socket error, the words
# for a refusal, and the path summary and verdict built from attempt results. Pure functions,
# no I/O, so every rule here is testable from a table. Standard library only (Python 3.8+).
from __future__ import annotations

import errno
import socket
import typing as t

from .. import _epns

Result = t.Dict[str, t.Any]

# TLS alert descriptions (RFC 8446 6) a server sends when it rejects or misses our certificate.
_ALERT_NAMES = {
    40: "handshake_failure", 42: "bad_certificate", 43: "unsupported_certificate",
    44: "certificate_revoked", 45: "certificate_expired", 46: "certificate_unknown",
    48: "unknown_ca", 49: "access_denied", 116: "certificate_required",
}
# The alerts that mean "your certificate is missing or refused" (40 is any handshake failure).
CERT_ALERTS = frozenset((42, 43, 44, 45, 46, 48, 49, 116))
# How OpenSSL names a received alert in the SSLError reason (its reason code is 1000 + the alert).
_ALERT_REASONS = {
    "SSLV3_ALERT_BAD_CERTIFICATE": 42, "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": 43,
    "SSLV3_ALERT_CERTIFICATE_REVOKED": 44, "SSLV3_ALERT_CERTIFICATE_EXPIRED": 45,
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": 46, "TLSV1_ALERT_UNKNOWN_CA": 48, "TLSV1_ALERT_ACCESS_DENIED": 49,
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": 116,
}

# Measured in the lab (docs/troubleshooting.md, "Who rejected the connection"): a reject rule gives connect() the
# same errno whether this host's own firewall or one on the way sent it, so only EPERM, which no ICMP message
# maps to, may name this host.
_ON_THE_WAY = "by a firewall on this host or on the way"
_UNREACHABLE_ERRNOS = {
    errno.EHOSTUNREACH: f"no route to the host, or rejected (ICMP host unreachable or prohibited) {_ON_THE_WAY}",
    errno.ENETUNREACH: "the network is unreachable: no route, or rejected (ICMP network unreachable or "
                       f"prohibited) {_ON_THE_WAY}",
    errno.EACCES: "rejected (ICMPv6 administratively prohibited, policy fail or reject route) "
                  f"{_ON_THE_WAY}",
    errno.ENOPROTOOPT: f"rejected (ICMP protocol unreachable) {_ON_THE_WAY}",
    errno.EHOSTDOWN: "the host is down",
    errno.ENETDOWN: "the network is down",
    errno.EADDRNOTAVAIL: "no local address can reach it (e.g. no IPv6 address on this host)",
    errno.EPERM: "this host's own policy forbids the connection (EPERM comes from a local rule, e.g. a cgroup or "
                 "eBPF filter or a security module, never from the network)",
}


class StageFailure(Exception):
    """A stage ended with a known failure class; the attempt records it as its outcome."""

    def __init__(self, cls: str, message: str, raw_error: str = "", detail: t.Optional[Result] = None,
                 proven_by_auth: bool = False) -> None:
        super().__init__(message)
        self.cls = cls
        self.message = message
        self.raw_error = raw_error
        self.detail = detail
        self.proven_by_auth = proven_by_auth


def make_failure(cls: str, stage: str, message: str, raw_error: str = "",
                 elapsed_ms: int = 0) -> Result:
    return {
        "class": cls,
        "stage": stage,
        "message": message,
        "raw_error": raw_error,
        "elapsed_ms": elapsed_ms,
        "hint": _epns.FAILURE_CLASSES[cls].hint,
    }


def deadline_failure(what: str, raw_error: str) -> StageFailure:
    """The failure of a wait that the overall deadline, not the stage's own timeout, cut short."""
    return StageFailure(_epns.TIMEOUT, f"the overall deadline ended {what}", raw_error)


def classify_connect_error(exc: BaseException, target: str, via_proxy: bool,
                           deadline_bound: bool, seconds: float) -> t.Tuple[str, str]:
    """(class, message) for a failed TCP connect to target (the EPNS address or the proxy)."""
    if isinstance(exc, socket.timeout) or getattr(exc, "errno", None) == errno.ETIMEDOUT:
        if deadline_bound:
            return _epns.TIMEOUT, f"the overall deadline ended the TCP connect to {target}"
        reason = f"no answer to the TCP connect within {seconds:g}s (packets dropped)"
        if via_proxy:
            return _epns.PROXY_UNREACHABLE, f"proxy {target}: {reason}"
        return _epns.TCP_TIMEOUT, f"{target}: {reason}"
    code = getattr(exc, "errno", None)
    if code == errno.ECONNREFUSED:
        reason = f"connection refused (a TCP reset or ICMP port unreachable: a closed port, or rejected {_ON_THE_WAY})"
        if via_proxy:
            return _epns.PROXY_UNREACHABLE, f"proxy {target}: {reason}"
        return _epns.TCP_REFUSED, f"{target}: {reason}"
    reason = _UNREACHABLE_ERRNOS.get(code or 0, f"connect failed ({exc})")
    if via_proxy:
        return _epns.PROXY_UNREACHABLE, f"proxy {target}: {reason}"
    return _epns.TCP_UNREACHABLE, f"{target}: {reason}"


def proxy_refusal_message(code: int, status: str, target: str) -> str:
    """Why the proxy's non-2xx answer to CONNECT target stops the path, in the operator's terms."""
    if code == 407:
        return (f"the proxy demands authentication ({status}); EPNS does not support proxy "
                f"authentication, so the proxy must allow CONNECT {target} without it")
    if code in (403, 405):
        return f"the proxy forbids CONNECT {target} ({status})"
    if code in (502, 503, 504):
        return (f"the proxy could not connect to {target} itself ({status}): its DNS, route or "
                "firewall blocks it")
    return f"the proxy refused CONNECT {target} ({status})"


def received_alerts(recorded: t.List[int], exc: t.Optional[BaseException]) -> t.List[int]:
    """The peer's alerts: those the TLS message callback saw, and the one an SSLError names."""
    alerts = list(recorded)
    code = _ALERT_REASONS.get(str(getattr(exc, "reason", None) or ""))
    if code is not None and code not in alerts:
        alerts.append(code)
    return alerts


def client_cert_refusal_message(client_cert_given: bool, peer_alerts: t.List[int],
                                during_handshake: bool) -> str:
    alerts = ", ".join(_ALERT_NAMES.get(a, str(a)) for a in peer_alerts) or "none"
    if client_cert_given:
        message = f"the server rejected our client certificate (alert: {alerts})"
    else:
        message = ("the server asked for a client certificate and ended the session without "
                   "one ({}, alert: {})".format(
                       "during the TLS 1.2 handshake" if during_handshake
                       else "after the TLS 1.3 handshake", alerts))
    if during_handshake:
        message += ("; a TLS 1.2 alert travels in clear before the handshake is finished, so any device on "
                    "the path could have sent it: this proves nothing about who answers")
    return message


def ssl_reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    if reason:
        return str(reason).lower().replace("_", " ")
    return str(exc) or exc.__class__.__name__


def printable(raw: bytes, limit: int = 200) -> str:
    """Peer bytes made safe to show: non-printable characters escaped, long input cut."""
    text = raw.decode("latin-1")
    text = "".join(ch if 0x20 <= ord(ch) < 0x7F else f"\\x{ord(ch):02x}" for ch in text)
    return text if len(text) <= limit else text[:limit] + "..."


def _stage_rank(stage: str) -> int:
    return _epns.STAGES.index(stage) if stage in _epns.STAGES else -1


def summarize_path(attempts: t.List[Result]) -> t.Tuple[bool, bool, t.Optional[Result], t.Optional[str]]:
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


def compute_verdict(paths: t.List[Result], dns: t.Optional[Result] = None
                    ) -> t.Tuple[str, str, t.Optional[str]]:
    """(verdict, verdict_reason, working_fallback) from the path results."""
    primary_ok = [p for p in paths if p["role"] == "primary" and p["ok"]]
    fallback_ok = [p for p in paths if p["role"] == "fallback" and p["ok"]]
    if primary_ok:
        best = next((p for p in primary_ok if not p["proven_by_auth"]), primary_ok[0])
        how = " (proven by the broker's request for credentials)" if best["proven_by_auth"] else ""
        others = [p["id"] for p in primary_ok if p is not best]
        also = "; also {}".format(", ".join(others)) if others else ""
        return _epns.VERDICT_REACHABLE, "{} works{}{}.".format(best["id"], how, also), None

    def why(p: Result) -> str:
        f = p.get("failure")
        return "{}: {}".format(p["id"], f["class"] if f else "not tried")

    primary_failed = [why(p) for p in paths if p["role"] == "primary"]
    if fallback_ok:
        fb = fallback_ok[0]
        return (
            _epns.VERDICT_DEGRADED,
            "Only the fallback {} works ({}); {}.".format(
                fb["id"], "; ".join(primary_failed) or "no primary path probed", _epns.DEGRADED_WHY),
            fb["id"],
        )
    if dns is not None and dns.get("failure") and not any(p.get("proxy") for p in paths):
        return (_epns.VERDICT_UNREACHABLE,
                "EPNS is unreachable: {}.".format(dns["failure"]["message"]), None)
    return (_epns.VERDICT_UNREACHABLE,
            "No path reaches EPNS ({}).".format("; ".join(why(p) for p in paths)), None)


def verdict_fails(verdict: str, fail_on: str) -> bool:
    if fail_on == "never":
        return False
    return _epns.VERDICTS.index(verdict) >= _epns.VERDICTS.index(fail_on)


def verdict_failure_message(result: Result) -> str:
    """The message of a host failed for its verdict: the verdict, what breaks where, and what to change.

    It is the one line Ansible prints for the failed task, so it reads as the verdict, not as an error of the probe.
    """
    failing = [p for p in result["paths"] if not p["ok"] and p.get("failure")]
    primary = [p for p in failing if p["role"] == "primary"]
    where = (primary or failing)[0] if failing else None
    cause = where["failure"] if where else (result.get("dns") or {}).get("failure")
    reason = result["verdict_reason"]
    message = reason if reason.startswith("EPNS is ") else "EPNS is {}: {}".format(result["verdict"], reason)
    if cause:
        message += " {} breaks at the {} stage ({}). Fix: {}".format(
            where["id"] if where else "EPNS", cause["stage"], cause["class"], cause["hint"])
    return message
