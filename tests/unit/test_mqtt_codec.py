"""MQTT 3.1.1 codec: byte-exact vectors computed by hand from the spec (sections 2.2.3, 3.1, 3.2)."""
from __future__ import annotations

import pytest
from ansible_collections.protectnet.epns.plugins.module_utils._epns import CONNACK_MEANINGS
from ansible_collections.protectnet.epns.plugins.module_utils._probe import _mqtt as M


@pytest.mark.parametrize(("value", "encoded"), [
    (0, b"\x00"),
    (127, b"\x7f"),
    (128, b"\x80\x01"),
    (16383, b"\xff\x7f"),
    (16384, b"\x80\x80\x01"),
    (2097151, b"\xff\xff\x7f"),
    (2097152, b"\x80\x80\x80\x01"),
    (268435455, b"\xff\xff\xff\x7f"),
])
def test_remaining_length_round_trip(value: int, encoded: bytes) -> None:
    assert M.encode_remaining_length(value) == encoded
    assert M.decode_remaining_length(b"\x20" + encoded) == (value, len(encoded))


@pytest.mark.parametrize("value", [-1, 268435456])
def test_remaining_length_out_of_range(value: int) -> None:
    with pytest.raises(M.MqttCodecError, match="outside"):
        M.encode_remaining_length(value)


def test_remaining_length_five_bytes_is_an_error() -> None:
    with pytest.raises(M.MqttCodecError, match="more than four bytes"):
        M.decode_remaining_length(b"\x20\xff\xff\xff\xff\x01")


def test_remaining_length_padded_is_an_error() -> None:
    with pytest.raises(M.MqttCodecError, match="minimally"):
        M.decode_remaining_length(b"\x20\x80\x00")


def test_remaining_length_incomplete_needs_more() -> None:
    assert M.decode_remaining_length(b"\x20\x80") is None
    assert M.decode_remaining_length(b"\x20") is None


def test_connect_minimal_vector() -> None:
    expected = (
        b"\x10\x1c"                      # CONNECT, remaining length 28
        b"\x00\x04MQTT\x04"              # protocol name, level 4 (3.1.1)
        b"\x02"                          # clean session only
        b"\x00\x3c"                      # keepalive 60
        b"\x00\x10pnprobe-0123abcd"      # client identifier
    )
    assert M.encode_connect("pnprobe-0123abcd", 60) == expected


def test_connect_with_credentials_vector() -> None:
    expected = b"\x10\x13\x00\x04MQTT\x04\xc2\x12\x34\x00\x01a\x00\x01u\x00\x01p"
    assert M.encode_connect("a", 0x1234, username="u", password=b"p") == expected


def test_connect_long_client_id_uses_two_byte_length() -> None:
    packet = M.encode_connect("x" * 200, 60)
    assert packet[:3] == b"\x10\xd4\x01"   # 10 + 2 + 200 = 212 = 0xd4 0x01
    assert len(packet) == 3 + 212


@pytest.mark.parametrize("kwargs", [{"keepalive": 65536}, {"keepalive": -1},
                                    {"keepalive": 1, "password": b"p"}])
def test_connect_rejects_invalid(kwargs: dict) -> None:
    with pytest.raises(M.MqttCodecError):
        M.encode_connect("a", **kwargs)


def first_packet(data: bytes, expect: int) -> M.Packet:
    """The packet the probe's session reads first from these bytes (split_packet, as _session does)."""
    split = M.split_packet(data, expect=expect)
    assert split is not None, f"{data!r} is not a whole packet yet"
    return split[0]


def read_connack(data: bytes) -> M.Connack:
    return M.parse_connack(first_packet(data, M.CONNACK))


@pytest.mark.parametrize("code", sorted(CONNACK_MEANINGS))
def test_connack_every_return_code(code: int) -> None:
    assert read_connack(bytes((0x20, 2, 0, code))) == M.Connack(False, code)


def test_connack_session_present() -> None:
    assert read_connack(b"\x20\x02\x01\x00") == M.Connack(True, 0)


@pytest.mark.parametrize(("data", "match"), [
    (b"\x30\x02\x00\x00", "expected CONNACK, got PUBLISH"),
    (b"\xd0\x00", "expected CONNACK, got PINGRESP"),
    (b"\x21\x02\x00\x00", "reserved flags"),
    (b"\x20\x03\x00\x00\x00", "must be 2"),
    (b"\x20\x01\x00", "must be 2"),
    (b"\x20\x02\x02\x00", "reserved bits"),
    (b"\x20\x02\x00\x06", "reserved in MQTT 3.1.1"),
    (b"\x20\x02\x00\x84", "return code 132"),
    (b"\x00\x02\x00\x00", "not an MQTT 3.1.1 packet type"),
    (b"\xf0\x00", "not an MQTT 3.1.1 packet type"),
    (b"HTTP/1.1 400 Bad Request\r\n", "expected CONNACK, got PUBACK \\(first byte 0x48\\)"),
])
def test_connack_malformed(data: bytes, match: str) -> None:
    with pytest.raises(M.MqttCodecError, match=match):
        read_connack(data)


@pytest.mark.parametrize("data", [b"\x20\x02\x00", b"\x20", b""])
def test_a_truncated_connack_waits_for_more_bytes(data: bytes) -> None:
    assert M.split_packet(data, expect=M.CONNACK) is None


def test_bytes_after_the_connack_are_left_for_the_next_read() -> None:
    assert M.split_packet(b"\x20\x02\x00\x00\xff", expect=M.CONNACK) == (M.Packet(2, 0, b"\x00\x00"), b"\xff")


def test_split_packet_stops_early_on_huge_announcement() -> None:
    # A peer announcing megabytes must be rejected before we wait for (or buffer) them.
    with pytest.raises(M.MqttCodecError, match="announces"):
        M.split_packet(b"\x20\xff\xff\x7f")


def test_split_packet_streaming() -> None:
    assert M.split_packet(b"") is None
    assert M.split_packet(b"\x20") is None
    assert M.split_packet(b"\x20\x02\x00") is None
    packet, rest = M.split_packet(b"\x20\x02\x00\x05\xd0\x00")  # type: ignore[misc]
    assert packet == M.Packet(2, 0, b"\x00\x05") and rest == b"\xd0\x00"


def test_pingreq_disconnect_bytes() -> None:
    assert M.PINGREQ == b"\xc0\x00"
    assert M.DISCONNECT == b"\xe0\x00"


def test_pingresp() -> None:
    M.parse_pingresp(first_packet(b"\xd0\x00", M.PINGRESP_TYPE))
    for bad in (b"\xd0\x01\x00", b"\xd1\x00", b"\x20\x02\x00\x00"):
        with pytest.raises(M.MqttCodecError):
            M.parse_pingresp(first_packet(bad, M.PINGRESP_TYPE))
    assert M.split_packet(b"\xd0", expect=M.PINGRESP_TYPE) is None
