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
from ansible_collections.protectnet.epns.plugins.module_utils._probe_attempt import AttemptLog, StageClock
from ansible_collections.protectnet.epns.plugins.module_utils._probe_classify import (
    StageFailure,
    deadline_failure,
    printable,
    ssl_reason,
)
from ansible_collections.protectnet.epns.plugins.module_utils._probe_settings import ProbePlan
from ansible_collections.protectnet.epns.plugins.module_utils._probe_tls import TlsStage


def ping_schedule(hold: float, interval: float) -> list[float]:
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
        self.s = plan.settings
        self.clock = clock
        self.tls_stage = tls_stage

    def connect(self, att: AttemptLog, tls: ssl.SSLSocket) -> None:
        att.begin("mqtt")
        deadline, bound = self.clock.stage_deadline()
        client_id = att.client_id
        rec = self.tls_stage.recorder(tls)
        buf = bytearray()
        try:
            tls.settimeout(self.clock.remaining(deadline))
            tls.sendall(encode_connect(client_id, self.plan.keepalive))
            packet = self._read_packet(tls, buf, deadline, CONNACK)
            connack = parse_connack(packet)
        except socket.timeout as exc:
            if bound:
                raise deadline_failure("the wait for CONNACK", str(exc)) from None
            raise StageFailure(E.MQTT_NO_CONNACK, "no CONNACK within {:g}s after CONNECT{}".format(
                self.s.connect_timeout,
                f" ({len(buf)} bytes of a packet arrived)" if buf else ""),
                str(exc)) from None
        except MqttCodecError as exc:
            raise StageFailure(E.MQTT_BAD_RESPONSE, f"the answer to CONNECT is not a CONNACK: {exc}",
                               f"{exc}; first bytes: {printable(bytes(buf[:32]))}") from None
        except (EOFError, OSError) as exc:
            ended = isinstance(exc, (EOFError, ConnectionError, ssl.SSLZeroReturnError,
                                     ssl.SSLEOFError))
            alert = isinstance(exc, ssl.SSLError) and "ALERT" in (
                getattr(exc, "reason", None) or "")
            if rec.cert_requested and (ended or alert) and not buf:
                # TLS 1.3: the server judges our (missing) certificate only after the handshake.
                self.tls_stage.fail_client_cert_required(att, rec, str(exc), during_handshake=False)
            if buf:
                raise StageFailure(E.MQTT_BAD_RESPONSE,
                                   f"the connection ended inside a packet after {len(buf)} bytes",
                                   str(exc)) from None
            if isinstance(exc, ssl.SSLError) and not ended and not alert:
                raise StageFailure(E.MQTT_BAD_RESPONSE,
                                   f"the TLS stream broke after the handshake ({ssl_reason(exc)}): the peer or a "
                                   "device in between sent bytes that are not TLS records", str(exc)) from None
            why = ssl_reason(exc) if isinstance(exc, ssl.SSLError) else str(exc) or exc.__class__.__name__
            raise StageFailure(E.MQTT_NO_CONNACK, f"the server ended the session without CONNACK ({why})",
                               str(exc)) from None
        meaning = E.CONNACK_MEANINGS[connack.return_code]
        att.mqtt = {"return_code": connack.return_code, "meaning": meaning,
                    "session_present": connack.session_present}
        if connack.return_code != 0:
            # A broker that judges our credentials is the real service, if TLS proved its identity.
            failure = StageFailure(
                E.MQTT_REFUSED, f"the broker refused the MQTT connection: {connack.return_code} {meaning}",
                f"CONNACK return code {connack.return_code}", detail={"return_code": connack.return_code},
                proven_by_auth=att.tls_verified and connack.return_code in E.CONNACK_AUTH_CODES)
            # Recorded before the DISCONNECT so the outcome stands even if the deadline comes meanwhile.
            att.record(failure)
            _send_quietly(tls, DISCONNECT)
            raise failure
        att.stage_ok({"return_code": 0, "keepalive": self.plan.keepalive, "client_id": client_id})
        if self.s.hold_seconds <= 0:
            _send_quietly(tls, DISCONNECT)
        self.tls_stage.forget(tls)

    def hold(self, att: AttemptLog, tls: ssl.SSLSocket) -> None:
        att.begin("hold")
        start = time.monotonic()
        hold, interval = self.s.hold_seconds, self.plan.ping_interval
        overall = self.clock.deadline
        pings = 0
        buf = bytearray()
        for at in ping_schedule(hold, interval):
            idle_until = start + at
            try:
                # Waiting for readability, not sleeping: a cut shows up the moment it happens.
                self._idle(tls, min(idle_until, overall), buf)
            except EOFError as exc:
                raise StageFailure(E.IDLE_DROPPED, f"the connection was closed after {time.monotonic() - start:.1f}s "
                                   f"idle ({pings} pings answered)", str(exc)) from None
            except MqttCodecError as exc:
                raise StageFailure(E.MQTT_BAD_RESPONSE, f"unexpected data while idle: {exc}", str(exc)) from None
            except OSError as exc:
                raise StageFailure(E.IDLE_DROPPED,
                                   f"the connection was reset after {time.monotonic() - start:.1f}s idle ({exc})",
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
                raise StageFailure(E.IDLE_DROPPED, f"no PINGRESP within {self.s.connect_timeout:g}s after {at:.1f}s "
                                   "idle: the connection is silently dead", str(exc)) from None
            except MqttCodecError as exc:
                raise StageFailure(E.MQTT_BAD_RESPONSE, f"the answer to PINGREQ is not PINGRESP: {exc}",
                                   str(exc)) from None
            except (EOFError, OSError) as exc:
                raise StageFailure(E.IDLE_DROPPED, f"the connection dropped at the ping after {at:.1f}s idle "
                                   f"({exc or exc.__class__.__name__})", str(exc)) from None
            pings += 1
        _send_quietly(tls, DISCONNECT)
        att.stage_ok({"seconds": hold, "ping_interval": interval, "pings": pings})

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
