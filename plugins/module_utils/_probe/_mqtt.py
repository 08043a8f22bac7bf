# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The few MQTT 3.1.1 packets a reachability probe needs, as bytes. No sockets here, so every
# byte can be tested against hand-computed vectors.
from __future__ import annotations

import struct
import typing as t

CONNECT = 1
CONNACK = 2
PINGRESP_TYPE = 13

PACKET_NAMES = {
    1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL", 7: "PUBCOMP",
    8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP",
    14: "DISCONNECT",
}

PINGREQ = b"\xc0\x00"
PINGRESP = b"\xd0\x00"
DISCONNECT = b"\xe0\x00"

MAX_REMAINING_LENGTH = 268435455  # four varint bytes, spec 2.2.3
# The probe only ever expects CONNACK and PINGRESP (2 bytes of body); anything much larger is not
# an answer to us, and reading it would let a hostile peer make us buffer megabytes.
MAX_EXPECTED_BODY = 1024


class MqttCodecError(ValueError):
    """Bytes that are not the MQTT 3.1.1 packet they should be."""


class Packet(t.NamedTuple):
    type: int
    flags: int
    body: bytes

    @property
    def name(self) -> str:
        return PACKET_NAMES.get(self.type, f"reserved type {self.type}")


class Connack(t.NamedTuple):
    session_present: bool
    return_code: int


def encode_remaining_length(length: int) -> bytes:
    if length < 0 or length > MAX_REMAINING_LENGTH:
        raise MqttCodecError(
            f"remaining length {length} is outside 0..{MAX_REMAINING_LENGTH}")
    out = bytearray()
    while True:
        digit = length % 128
        length //= 128
        if length:
            digit |= 0x80
        out.append(digit)
        if not length:
            return bytes(out)


def decode_remaining_length(data: bytes, offset: int = 1) -> t.Optional[t.Tuple[int, int]]:
    """Return (value, bytes used), or None when data ends inside the varint."""
    value = 0
    for i in range(4):
        if offset + i >= len(data):
            return None
        byte = data[offset + i]
        value += (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            # The spec forbids padding a varint with continuation bytes of zero.
            if i and byte == 0:
                raise MqttCodecError("remaining length is not minimally encoded")
            return value, i + 1
    raise MqttCodecError("remaining length uses more than four bytes")


def _utf8_field(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 65535:
        raise MqttCodecError("string field longer than 65535 bytes")
    return struct.pack("!H", len(raw)) + raw


def encode_connect(
    client_id: str,
    keepalive: int,
    clean_session: bool = True,
    username: t.Optional[str] = None,
    password: t.Optional[bytes] = None,
) -> bytes:
    if not 0 <= keepalive <= 65535:
        raise MqttCodecError(f"keepalive {keepalive} is outside 0..65535")
    if password is not None and username is None:
        raise MqttCodecError("MQTT 3.1.1 allows a password only with a user name")
    flags = 0x02 if clean_session else 0
    payload = _utf8_field(client_id)
    if username is not None:
        flags |= 0x80
        payload += _utf8_field(username)
    if password is not None:
        flags |= 0x40
        if len(password) > 65535:
            raise MqttCodecError("password longer than 65535 bytes")
        payload += struct.pack("!H", len(password)) + password
    variable = _utf8_field("MQTT") + bytes((4, flags)) + struct.pack("!H", keepalive)
    body = variable + payload
    return bytes((CONNECT << 4,)) + encode_remaining_length(len(body)) + body


def split_packet(data: bytes, max_body: int = MAX_EXPECTED_BODY,
                 expect: t.Optional[int] = None) -> t.Optional[t.Tuple[Packet, bytes]]:
    """Take one packet off the front of data: (packet, rest), or None when more bytes are needed.

    Raises MqttCodecError as soon as the bytes seen cannot start the packet expected, so a peer
    sending garbage (an HTTP error page, say) is recognised at its first byte instead of after
    the timeout.
    """
    if not data:
        return None
    ptype, flags = data[0] >> 4, data[0] & 0x0F
    if ptype == 0 or ptype == 15:
        raise MqttCodecError(f"first byte 0x{data[0]:02x} is not an MQTT 3.1.1 packet type")
    if expect is not None and ptype != expect:
        raise MqttCodecError(f"expected {PACKET_NAMES[expect]}, got {PACKET_NAMES[ptype]} (first byte 0x{data[0]:02x})")
    decoded = decode_remaining_length(data)
    if decoded is None:
        return None
    length, used = decoded
    if length > max_body:
        raise MqttCodecError(
            f"{PACKET_NAMES.get(ptype, 'packet')} announces {length} bytes, more than the {max_body} expected")
    end = 1 + used + length
    if len(data) < end:
        return None
    return Packet(ptype, flags, bytes(data[1 + used:end])), bytes(data[end:])


def parse_connack(packet: Packet) -> Connack:
    if packet.type != CONNACK:
        raise MqttCodecError(f"expected CONNACK, got {packet.name}")
    if packet.flags:
        raise MqttCodecError(f"CONNACK with reserved flags 0x{packet.flags:x}")
    if len(packet.body) != 2:
        raise MqttCodecError(f"CONNACK body is {len(packet.body)} bytes, must be 2")
    ack_flags, code = packet.body[0], packet.body[1]
    if ack_flags & 0xFE:
        raise MqttCodecError(f"CONNACK acknowledge flags 0x{ack_flags:02x} use reserved bits")
    if code > 5:
        raise MqttCodecError(f"CONNACK return code {code} is reserved in MQTT 3.1.1")
    return Connack(bool(ack_flags & 1), code)


def parse_pingresp(packet: Packet) -> None:
    if packet.type != PINGRESP_TYPE:
        raise MqttCodecError(f"expected PINGRESP, got {packet.name}")
    if packet.flags or packet.body:
        raise MqttCodecError("malformed PINGRESP")
