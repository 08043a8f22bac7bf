# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The probe's MQTT stages over an established TLS session: CONNECT/CONNACK, then optionally
# holding the session idle with pings, the way the agent keeps its EPNS connection.
# Standard library only; managed hosts run Python 3.8+.
from __future__ import annotations

import socket
import ssl
import time
import typing as t

from .. import _epns
from ._attempt import AttemptLog, StageClock
from ._classify import (
    CERT_ALERTS,
    StageFailure,
    deadline_failure,
    printable,
    received_alerts,
    ssl_reason,
)
from ._mqtt import (
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
from ._options import ProbePlan
from ._tls import TlsStage

# include/net/tcp_states.h
_TCP_CLOSE = 7
# The shortest wait for a server's verdict on our certificate: covers a loaded machine's scheduling.
_MIN_VERDICT_WAIT = 0.05


def ping_schedule(hold: float, interval: float) -> t.List[float]:
    """Seconds into the hold at which to ping: every interval, and once more at the end."""
    times = []
    k = 1
    while k * interval < hold - 1e-6:
        times.append(k * interval)
        k += 1
    times.append(hold)
    return times


class MqttSession:
    def __init__(self, plan: ProbePlan, clock: StageClock, tls_stage: TlsStage) -> None:
        self.plan = plan
        self.settings = plan.settings
        self.clock = clock
        self.tls_stage = tls_stage

    def connect(self, att: AttemptLog, tls: ssl.SSLSocket) -> None:
        att.begin("mqtt")
        deadline, bound = self.clock.stage_deadline()
        client_id = att.client_id
        buf = bytearray()
        try:
            self._await_certificate_verdict(att, tls, buf, deadline)
            tls.settimeout(self.clock.remaining(deadline))
            tls.sendall(encode_connect(client_id, self.plan.keepalive))
            packet = self._read_packet(tls, buf, deadline, CONNACK)
            connack = parse_connack(packet)
        except socket.timeout as exc:
            if bound:
                raise deadline_failure("the wait for CONNACK", str(exc)) from None
            raise StageFailure(_epns.MQTT_NO_CONNACK, "no CONNACK within {:g}s after CONNECT{}".format(
                self.settings.connect_timeout,
                f" ({len(buf)} bytes of a packet arrived)" if buf else ""),
                str(exc)) from None
        except MqttCodecError as exc:
            raise StageFailure(_epns.MQTT_BAD_RESPONSE, f"the answer to CONNECT is not a CONNACK: {exc}",
                               f"{exc}; first bytes: {printable(bytes(buf[:32]))}") from None
        except (EOFError, OSError) as exc:
            raise self._ended_without_connack(att, tls, bytes(buf), exc) from None
        meaning = _epns.CONNACK_MEANINGS[connack.return_code]
        att.mqtt = {"return_code": connack.return_code, "meaning": meaning,
                    "session_present": connack.session_present}
        if connack.return_code != 0:
            # A broker that judges our credentials is the real service, if TLS proved its identity.
            failure = StageFailure(
                _epns.MQTT_REFUSED, f"the broker refused the MQTT connection: {connack.return_code} {meaning}",
                f"CONNACK return code {connack.return_code}", detail={"return_code": connack.return_code},
                proven_by_auth=att.tls_verified and connack.return_code in _epns.CONNACK_AUTH_CODES)
            # Recorded before the DISCONNECT so the outcome stands even if the deadline comes meanwhile.
            att.record(failure)
            _send_quietly(tls, DISCONNECT)
            raise failure
        att.stage_ok({"return_code": 0, "keepalive": self.plan.keepalive, "client_id": client_id})
        if self.settings.hold_seconds <= 0:
            # The outcome is known: the deadline or a failure during the courtesy DISCONNECT must not undo it.
            att.succeed()
            _send_quietly(tls, DISCONNECT)
        self.tls_stage.forget(tls)

    def _await_certificate_verdict(self, att: AttemptLog, tls: ssl.SSLSocket, buf: bytearray,
                                   deadline: float) -> None:
        """Give a TLS 1.3 server that asked for our certificate time to judge it before CONNECT.

        It judges only after the handshake, and refuses with an alert and a reset. When both arrive
        before CONNECT is written (a near server), the failed write leaves OpenSSL unable to read the
        alert that is waiting, and the one proof of a genuine refusal is lost. So read first, for
        about as long as the handshake took (the server's answer needs one round trip too).
        """
        if not self.tls_stage.recorder(tls).cert_requested or tls.version() != "TLSv1.3":
            return
        grace = min(self.clock.remaining(deadline), max(_MIN_VERDICT_WAIT, 2 * att.stage_seconds("tls")))
        _receive(tls, buf, grace, "connection closed before CONNECT")

    def _ended_without_connack(self, att: AttemptLog, tls: ssl.SSLSocket, partial: bytes,
                               exc: BaseException) -> StageFailure:
        """The failure for a session that ended (EOF, reset, alert, broken record) before CONNACK."""
        recorder = self.tls_stage.recorder(tls)
        if partial:
            return StageFailure(_epns.MQTT_BAD_RESPONSE, f"the connection ended inside a packet after {len(partial)} "
                                "bytes", str(exc))
        alerts = received_alerts(recorder.peer_alerts, exc)
        if recorder.cert_requested and any(a in CERT_ALERTS for a in alerts):
            # TLS 1.3: the server judges our (missing) certificate only after the handshake.
            self.tls_stage.fail_client_cert_required(att, recorder, str(exc), during_handshake=False, alerts=alerts)
        eof = isinstance(exc, (EOFError, ConnectionError, ssl.SSLZeroReturnError, ssl.SSLEOFError))
        alert = isinstance(exc, ssl.SSLError) and "ALERT" in (getattr(exc, "reason", None) or "")
        if isinstance(exc, ssl.SSLError) and not eof and not alert:
            return StageFailure(_epns.MQTT_BAD_RESPONSE,
                                f"the TLS stream broke after the handshake ({ssl_reason(exc)}): the peer or a "
                                "device in between sent bytes that are not TLS records", str(exc))
        unproven = ("; the server had asked for a client certificate, but no certificate alert came, so this "
                    "proves nothing about who ended the session (a device on the path that cuts TLS sessions "
                    "looks the same)" if recorder.cert_requested else "")
        if _peer_reset(tls, exc):
            return StageFailure(_epns.CONNECTION_RESET, "the connection was reset (TCP RST) after the TLS handshake, "
                                f"without a TLS alert or CONNACK{unproven}", str(exc) or "reset")
        return StageFailure(_epns.MQTT_NO_CONNACK, "the server ended the session without CONNACK "
                            f"({_how_it_ended(exc, alerts, eof, alert)}){unproven}", str(exc))

    def hold(self, att: AttemptLog, tls: ssl.SSLSocket) -> None:
        att.begin("hold")
        start = time.monotonic()
        hold, interval = self.settings.hold_seconds, self.plan.ping_interval
        overall = self.clock.deadline
        pings = 0
        buf = bytearray()
        for at in ping_schedule(hold, interval):
            idle_until = start + at
            try:
                # Waiting for readability, not sleeping: a cut shows up the moment it happens.
                self._idle(tls, min(idle_until, overall), buf)
            except EOFError as exc:
                raise StageFailure(_epns.IDLE_DROPPED,
                                   f"the connection was closed after {time.monotonic() - start:.1f}s "
                                   f"idle ({pings} pings answered)", str(exc)) from None
            except MqttCodecError as exc:
                raise StageFailure(_epns.MQTT_BAD_RESPONSE, f"unexpected data while idle: {exc}", str(exc)) from None
            except OSError as exc:
                how = "reset" if _peer_reset(tls, exc) else "closed"
                raise StageFailure(_epns.IDLE_DROPPED,
                                   f"the connection was {how} after {time.monotonic() - start:.1f}s idle ({exc})",
                                   str(exc)) from None
            if idle_until > overall:
                raise deadline_failure(f"the hold after {time.monotonic() - start:.1f}s", "deadline")
            deadline, bound = self.clock.stage_deadline()
            try:
                tls.settimeout(self.clock.remaining(deadline))
                tls.sendall(PINGREQ)
                parse_pingresp(self._read_packet(tls, buf, deadline, PINGRESP_TYPE))
            except socket.timeout as exc:
                if bound:
                    raise deadline_failure("the wait for PINGRESP", str(exc)) from None
                raise StageFailure(_epns.IDLE_DROPPED,
                                   f"no PINGRESP within {self.settings.connect_timeout:g}s after {at:.1f}s "
                                   "idle: the connection is silently dead", str(exc)) from None
            except MqttCodecError as exc:
                raise StageFailure(_epns.MQTT_BAD_RESPONSE, f"the answer to PINGREQ is not PINGRESP: {exc}",
                                   str(exc)) from None
            except (EOFError, OSError) as exc:
                raise StageFailure(_epns.IDLE_DROPPED, f"the connection dropped at the ping after {at:.1f}s idle "
                                   f"({exc or exc.__class__.__name__})", str(exc)) from None
            pings += 1
        att.stage_ok({"seconds": hold, "ping_interval": interval, "pings": pings})
        att.succeed()
        _send_quietly(tls, DISCONNECT)

    def _read_packet(self, tls: ssl.SSLSocket, buf: bytearray, deadline: float,
                     expect: int) -> Packet:
        """Next MQTT packet; raises socket.timeout, EOFError, MqttCodecError or OSError."""
        while True:
            split = split_packet(bytes(buf), expect=expect)
            if split is not None:
                packet, rest = split
                buf[:] = rest
                return packet
            tls.settimeout(self.clock.remaining(deadline))
            _quickack(tls)
            chunk = tls.recv(4096)
            if not chunk:
                raise EOFError(f"connection closed after {len(buf)} bytes")
            buf.extend(chunk)

    @staticmethod
    def _idle(tls: ssl.SSLSocket, until: float, buf: bytearray) -> None:
        while True:
            left = until - time.monotonic()
            if left <= 0 or not _receive(tls, buf, left, "EOF"):
                return
            split = split_packet(bytes(buf))
            if split is not None:
                raise MqttCodecError(f"the broker sent {split[0].name} without being asked")


def _receive(tls: ssl.SSLSocket, buf: bytearray, timeout: float, eof_message: str) -> bool:
    """Append what arrives within timeout to buf; False when nothing did, EOFError when the peer closed."""
    tls.settimeout(timeout)
    try:
        chunk = tls.recv(4096)
    except socket.timeout:
        return False
    if not chunk:
        raise EOFError(eof_message)
    buf.extend(chunk)
    return True


def _how_it_ended(exc: BaseException, alerts: t.List[int], eof: bool, alert: bool) -> str:
    if alert:
        return ssl_reason(exc)
    if 0 in alerts:
        return "the TLS session was closed with close_notify"
    if eof:
        return "the TCP connection was closed without a TLS alert"
    return str(exc) or exc.__class__.__name__


def _peer_reset(sock: socket.socket, exc: BaseException) -> bool:
    """Whether the TCP connection was reset, as opposed to closed.

    Through TLS, OpenSSL reports a reset as an EOF without a reason of its own (a FIN is
    UNEXPECTED_EOF_WHILE_READING on OpenSSL 3); the socket state tells them apart on older
    OpenSSL too: a reset leaves it CLOSE, a FIN CLOSE_WAIT.
    """
    if isinstance(exc, ConnectionResetError):
        return True
    if not isinstance(exc, ssl.SSLEOFError) or getattr(exc, "reason", None):
        return False
    tcp_info = getattr(socket, "TCP_INFO", None)
    if tcp_info is None:
        return False
    try:
        state = sock.getsockopt(socket.IPPROTO_TCP, tcp_info, 8)[0]  # struct tcp_info starts with tcpi_state
    except (OSError, IndexError):
        return False
    return state == _TCP_CLOSE


def _send_quietly(tls: ssl.SSLSocket, data: bytes) -> None:
    # A courtesy to the broker; the outcome is already known, so a failure here changes nothing.
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
