# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The probe's TLS stage: the handshake, what the peer's certificate says about who answers
# (genuine, untrusted, intercepted), and whether the server asks for a client certificate.
# Standard library only; managed hosts run Python 3.8+.
from __future__ import annotations

import hashlib
import socket
import ssl
import threading
import typing as t

from .. import _epns
from ._attempt import AttemptLog, StageClock
from ._classify import (
    CERT_ALERTS,
    Result,
    StageFailure,
    client_cert_refusal_message,
    deadline_failure,
    ssl_reason,
)
from ._options import ProbePlan
from ._trust import assess, issuer_spec_matches
from ._tunnel import Route, open_tunnel_quietly
from ._x509 import (
    Certificate,
    X509Error,
    certificates_from_tls_handshake,
    parse_certificate,
)

# TLS record content types and handshake message types (RFC 8446 4, 5.1).
_HS_CERTIFICATE = 11
_HS_CERTIFICATE_REQUEST = 13
_CT_ALERT = 21
_CT_HANDSHAKE = 22


class TlsRecorder:
    """What the TLS handshake showed us, seen through OpenSSL's message callback."""

    def __init__(self) -> None:
        self.cert_requested = False
        self.version: t.Optional[str] = None
        self.leaf_der: t.Optional[bytes] = None
        self.chain_der: t.List[bytes] = []   # as the server sent it, leaf first
        self.peer_alerts: t.List[int] = []


class TlsStage:
    def __init__(self, plan: ProbePlan, clock: StageClock) -> None:
        self.plan = plan
        self.settings = plan.settings
        self.clock = clock
        self._recorders: t.Dict[int, TlsRecorder] = {}
        self._recorders_lock = threading.Lock()
        # A private but long-standing (3.8+) hook: it shows the certificate and alerts of a
        # handshake that fails. Without it, _second_look fetches the certificate instead.
        try:
            plan.context._msg_callback = self._on_tls_message  # type: ignore[attr-defined]
        except (AttributeError, TypeError, ValueError):
            pass

    def run(self, att: AttemptLog, route: Route, sock: socket.socket) -> ssl.SSLSocket:
        att.begin("tls")
        deadline, bound = self.clock.stage_deadline()
        recorder = TlsRecorder()
        # Ragged EOFs raised, not read as b"": how the session ended (reset, FIN, close_notify) is evidence.
        tls = self.plan.context.wrap_socket(sock, server_hostname=self.plan.server_name,
                                            do_handshake_on_connect=False, suppress_ragged_eofs=False)
        with self._recorders_lock:
            self._recorders[id(tls)] = recorder
        try:
            self._handshake(att, route, tls, recorder, deadline, bound)
        except BaseException:
            self.forget(tls)
            tls.close()
            raise
        return tls

    def recorder(self, tls: ssl.SSLSocket) -> TlsRecorder:
        with self._recorders_lock:
            return self._recorders.get(id(tls)) or TlsRecorder()

    def forget(self, tls: ssl.SSLSocket) -> None:
        with self._recorders_lock:
            self._recorders.pop(id(tls), None)

    def fail_client_cert_required(self, att: AttemptLog, recorder: TlsRecorder, raw: str,
                                  during_handshake: bool, alerts: t.Optional[t.List[int]] = None) -> t.NoReturn:
        alerts = recorder.peer_alerts if alerts is None else alerts
        message = client_cert_refusal_message(bool(self.settings.client_cert), alerts, during_handshake)
        failure = StageFailure(_epns.TLS_CLIENT_CERT_REQUIRED, message, raw,
                               proven_by_auth=self._genuine_refusal(att, alerts, during_handshake))
        att.record(failure)
        raise failure

    @staticmethod
    def _genuine_refusal(att: AttemptLog, alerts: t.List[int], during_handshake: bool) -> bool:
        """Whether only the server whose certificate we verified can have refused us.

        A TLS 1.3 alert after the handshake is encrypted with that session's keys, so no device on the
        path can forge it; a TLS 1.2 alert travels in clear before Finished, and anyone can send it.
        """
        tls13 = (att.tls or {}).get("version") == "TLSv1.3"
        return (not during_handshake and tls13 and att.tls_verified
                and any(a in CERT_ALERTS for a in alerts))

    def _handshake(self, att: AttemptLog, route: Route, tls: ssl.SSLSocket, recorder: TlsRecorder,
                   deadline: float, bound: bool) -> None:
        name = self.plan.server_name
        try:
            tls.settimeout(self.clock.remaining(deadline))
            tls.do_handshake()
        except ssl.SSLCertVerificationError as exc:
            der = recorder.leaf_der or self._second_look(route, deadline)
            cert = self._describe(att, der, recorder.version, None, verified=False)
            reason = getattr(exc, "verify_message", "") or str(exc)
            self._check_issuer(cert, f" ({reason})", str(exc))
            raise StageFailure(_epns.TLS_UNTRUSTED, "the certificate for {} (issued by {}) is not trusted: "
                               "{}".format(name, cert.issuer_text() if cert else "an unknown issuer",
                                           reason), str(exc)) from None
        except socket.timeout as exc:
            if bound:
                raise deadline_failure("the TLS handshake", str(exc)) from None
            limit = self.settings.connect_timeout
            raise StageFailure(_epns.TLS_HANDSHAKE_FAILED,
                               f"no complete TLS handshake within {limit:g}s", str(exc)) from None
        except (ssl.SSLError, OSError) as exc:
            if recorder.cert_requested and recorder.peer_alerts:
                # TLS 1.2: the client had already accepted the server's certificate (it would
                # have aborted with its own alert otherwise) when the server gave up on ours.
                cert = self._describe(att, recorder.leaf_der, recorder.version, None,
                                      verified=self.settings.validate_certs and bool(recorder.leaf_der))
                self._check_issuer(cert, "", str(exc))
                self.fail_client_cert_required(att, recorder, str(exc), during_handshake=True)
            raise StageFailure(_epns.TLS_HANDSHAKE_FAILED, f"TLS handshake with {name} failed: {ssl_reason(exc)}",
                               str(exc)) from None
        cipher = (tls.cipher() or ("",))[0]
        cert = self._describe(att, tls.getpeercert(binary_form=True), tls.version(), cipher,
                              verified=self.settings.validate_certs)
        if self.settings.validate_certs:
            self._check_trust(att, cert, recorder)
        else:
            self._check_issuer(cert, "", "issuer mismatch")
        att.stage_ok({"version": tls.version(), "cipher": cipher,
                      "verified": self.settings.validate_certs,
                      "client_cert_requested": recorder.cert_requested})

    def _check_trust(self, att: AttemptLog, cert: t.Optional[Certificate], recorder: TlsRecorder) -> None:
        """A chain this host verified can still belong to an interceptor whose CA the host trusts."""
        if cert is None or self.plan.trust is None:
            return
        # The callback saw the Certificate message of this very handshake when its leaf is the peer's.
        same = bool(recorder.chain_der) and hashlib.sha256(recorder.chain_der[0]).hexdigest() == cert.sha256
        finding = assess(self.plan.trust, cert, recorder.chain_der[1:] if same else [], self.plan.issuer_spec,
                         self.plan.inspection_names, self.plan.server_name)
        if att.tls is not None:
            att.tls["anchor"] = finding.anchor
        if finding.intercepted:
            raise StageFailure(_epns.TLS_INTERCEPTED, f"{finding.message}: TLS is intercepted by a CA this host "
                               "trusts", "issuer check")

    def _check_issuer(self, cert: t.Optional[Certificate], reason: str, raw: str) -> None:
        spec = self.plan.issuer_spec
        # Without a verified chain there is no CA whose key a pin could be compared with.
        if cert is None or spec is None or spec.kind == "pin":
            return
        if not issuer_spec_matches(spec, cert, []):
            raise StageFailure(_epns.TLS_INTERCEPTED,
                               f"the certificate for {self.plan.server_name} was issued by {cert.issuer_text()}, "
                               f"not by {self.settings.expected_issuer!r}: TLS is intercepted{reason}", raw)

    @staticmethod
    def _describe(att: AttemptLog, der: t.Optional[bytes], tls_version: t.Optional[str],
                  cipher: t.Optional[str], verified: bool) -> t.Optional[Certificate]:
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

    def _second_look(self, route: Route, deadline: float) -> t.Optional[bytes]:
        """The certificate the server shows, fetched again without verification."""
        try:
            sock = open_tunnel_quietly(route, deadline)
        except (OSError, StageFailure, ValueError):
            return None
        try:
            with self.plan.look_context.wrap_socket(
                    sock, server_hostname=self.plan.server_name,
                    do_handshake_on_connect=False) as tls:
                tls.settimeout(self.clock.remaining(deadline))
                tls.do_handshake()
                return tls.getpeercert(binary_form=True)
        except (OSError, ValueError):
            return None
        finally:
            sock.close()

    def _on_tls_message(self, conn: t.Any, direction: t.Any, version: t.Any, content_type: t.Any,
                        msg_type: t.Any, data: bytes) -> None:
        # An exception escaping here would surface as an obscure SSL error mid-handshake.
        try:
            if str(direction) != "read" and getattr(direction, "value", None) != "read":
                return
            with self._recorders_lock:
                recorder = self._recorders.get(id(conn))
            if recorder is None:
                return
            ctype = int(content_type)
            if ctype == _CT_HANDSHAKE and data:
                if data[0] == _HS_CERTIFICATE_REQUEST:
                    recorder.cert_requested = True
                elif data[0] == _HS_CERTIFICATE and recorder.leaf_der is None:
                    tls13 = int(version) >= 0x0304
                    recorder.version = "TLSv1.3" if tls13 else "TLSv1.2"
                    certs = certificates_from_tls_handshake(bytes(data), tls13)
                    if certs:
                        recorder.leaf_der = certs[0]
                        recorder.chain_der = certs
            elif ctype == _CT_ALERT and len(data) >= 2:
                recorder.peer_alerts.append(data[1])
        except Exception:  # noqa: S110 - see above
            pass


def close_quietly(tls: t.Optional[ssl.SSLSocket], sock: t.Optional[socket.socket]) -> None:
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
