# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The optional server path: TCP and TLS to the ESET PROTECT server's agent port (2222 by default), directly and
# through each proxy, the way the agent connects after a wake-up call. It reuses the EPNS stages (_tunnel, _tls)
# and failure classes; what differs is the trust (only the CA file given: the ESET PROTECT server's own
# certificate authority), the host name check (by the name or address the agent was installed with; ESET's
# default server certificate names the host "*", which matches any), and the verdict, which is the server's own
# and never the EPNS one. Nothing above TLS is checked: the agent protocol, the agent's own certificate and its
# acceptance by the server are not. Standard library only; managed hosts run Python 3.8+.
from __future__ import annotations

import ipaddress
import typing as t

from .. import _epns
from ._attempt import AttemptLog
from ._classify import Result, StageFailure
from ._tls import TlsRecorder, TlsStage
from ._x509 import Certificate, X509Error, parse_certificate

SERVER_ROLE = "server"
SERVER_REACHABLE = "reachable"
SERVER_PARTIAL = "partial"
SERVER_UNREACHABLE = "unreachable"
SERVER_VERDICTS = (SERVER_REACHABLE, SERVER_PARTIAL, SERVER_UNREACHABLE)
# ESET PROTECT creates its server certificate for host "*" unless told otherwise: it stands for any host.
_ANY_HOST = "*"


def server_path_id(port: int, proxy_url: t.Optional[str]) -> str:
    return "{} server {}".format(port, "via " + proxy_url if proxy_url else "direct")


def _same_address(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a.split("%", 1)[0]) == ipaddress.ip_address(b.split("%", 1)[0])
    except ValueError:
        return False


def _name_matches(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern == _ANY_HOST or pattern == host or _same_address(pattern, host):
        return True
    # A wildcard stands for exactly one leftmost label (RFC 6125 6.4.3), never for a dot.
    if pattern.startswith("*.") and "." in host:
        return host.split(".", 1)[1] == pattern[2:] and pattern.count(".") >= 2
    return False


def certificate_names(cert: Certificate) -> t.List[str]:
    """The names the certificate is for: its subject alternative names, else its common names."""
    return list(cert.sans) or cert.attribute("subject", "CN")


def names_host(cert: Certificate, host: str) -> bool:
    return any(_name_matches(name, host) for name in certificate_names(cert))


class ServerTlsStage(TlsStage):
    """The TLS stage against the ESET PROTECT server: chain verified by OpenSSL against eset_server_ca_path,
    host name checked here (OpenSSL's own check would refuse ESET's default certificate for host "*")."""

    def _check_trust(self, att: AttemptLog, cert: t.Optional[Certificate], recorder: TlsRecorder) -> None:
        super()._check_trust(att, cert, recorder)
        self._check_host(cert)

    def _check_host(self, cert: t.Optional[Certificate]) -> None:
        host = self.plan.server_name
        if cert is None:
            raise StageFailure(_epns.TLS_UNTRUSTED, f"the ESET PROTECT server at {host} showed no readable "
                               "certificate", "no certificate")
        if not names_host(cert, host):
            names = ", ".join(certificate_names(cert)) or "no name"
            raise StageFailure(_epns.TLS_UNTRUSTED, f"the certificate (issued by {cert.issuer_text()}) is for "
                               f"{names}, not {host}: an agent installed with {host} as its server would "
                               "refuse it", "host name mismatch")

    def fail_client_cert_required(self, att: AttemptLog, recorder: TlsRecorder, raw: str,
                                  during_handshake: bool, alerts: t.Optional[t.List[int]] = None) -> t.NoReturn:
        """The server asks agents for their certificate: with its own chain verified, that is the genuine server."""
        cert = None
        if recorder.leaf_der:
            try:
                cert = parse_certificate(recorder.leaf_der)
            except X509Error:
                cert = None
        self._check_host(cert)
        failure = StageFailure(_epns.TLS_CLIENT_CERT_REQUIRED,
                               "the server's certificate was verified, then it asked for the agent's certificate "
                               "(the probe has none): the path reaches the ESET PROTECT server", raw,
                               proven_by_auth=True)
        att.record(failure)
        raise failure


def compute_server_verdict(paths: t.List[Result]) -> t.Tuple[t.Optional[str], t.Optional[str]]:
    """(server_verdict, server_verdict_reason); (None, None) when no server path was probed."""
    if not paths:
        return None, None
    working = [p["id"] for p in paths if p["ok"]]
    failing = ["{}: {}".format(p["id"], p["failure"]["class"] if p.get("failure") else "not tried")
               for p in paths if not p["ok"]]
    if not failing:
        return SERVER_REACHABLE, ("The ESET PROTECT server's agent port answers with a trusted certificate on "
                                  "{}.").format(", ".join(working))
    if working:
        return SERVER_PARTIAL, ("The ESET PROTECT server is reached on {} but not on {}: an agent using a failing "
                                "path cannot replicate after a wake-up call.").format(
            ", ".join(working), "; ".join(failing))
    return SERVER_UNREACHABLE, ("No path reaches the ESET PROTECT server's agent port ({}): a wake-up call "
                                "would reach the agent, but the agent could not connect back.").format(
        "; ".join(failing))


def server_line(result: Result) -> str:
    """The sentence the module adds to its message when the server path is not fully reachable ('' otherwise)."""
    verdict = result.get("server_verdict")
    if verdict in (None, SERVER_REACHABLE):
        return ""
    return "ESET PROTECT server {}: {}".format(verdict, result.get("server_verdict_reason") or "")


# What to change when a server path fails, in the server's terms (the EPNS hints name epns.eset.com).
_SERVER_HINTS = {
    _epns.TCP_TIMEOUT: "Allow outbound TCP to the ESET PROTECT server on its agent port (2222 by default) in this "
                       "host's firewall and every firewall on the way; the drop is silent.",
    _epns.TCP_REFUSED: "Nothing accepts the agent port at that address: check that the ESET PROTECT server listens "
                       "on it (its agent port setting) and that no firewall rejects it.",
    _epns.TCP_UNREACHABLE: "Check the route to the ESET PROTECT server and the reject rules on the way.",
    _epns.DNS_NO_ANSWER: "The server name the agent was installed with must resolve on this host.",
    _epns.PROXY_REFUSED: "Allow CONNECT to the ESET PROTECT server on its agent port in the proxy "
                         "(protectnet.epns.proxy_connect_ports with eset_server), or let agents reach the server "
                         "directly.",
    _epns.TLS_UNTRUSTED: "Give the ESET PROTECT server's certification authority (console: More > Certification "
                         "Authorities, export the public key) as eset_server_ca_path; if the issuer shown is a "
                         "TLS-inspecting device, exempt the server's agent port from inspection; a name mismatch "
                         "means the server certificate's host does not cover the name agents use.",
    _epns.TLS_INTERCEPTED: "Exempt the ESET PROTECT server's agent port from TLS inspection: the agent trusts "
                           "only the server's own certification authority.",
}


def server_hint(cls: str) -> str:
    return _SERVER_HINTS.get(cls) or _epns.FAILURE_CLASSES[cls].hint


def server_failure(failure: t.Optional[Result], note: t.Optional[str],
                   proven: bool) -> t.Tuple[t.Optional[Result], t.Optional[str]]:
    """A server path's failure with the server's hint, and its note in the server's terms."""
    if failure is not None:
        failure = dict(failure, hint=server_hint(failure["class"]))
    if proven:
        note = ("the server's certificate was verified, then it asked for the agent's certificate: the path "
                "reaches the ESET PROTECT server (the agent's own certificate is not checked)")
    return failure, note
