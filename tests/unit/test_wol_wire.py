"""Magic packets, SecureOn, the sender's error classes, and a real listener on loopback."""
from __future__ import annotations

import errno
import socket
import threading
import time
import typing as t

import pytest
from ansible_collections.protectnet.epns.plugins.module_utils._wol import _packet, _wire

MAC = bytes.fromhex("02504e574f4c")


def test_magic_packet_layout_and_parse() -> None:
    packet = _packet.build(MAC)
    assert len(packet) == 102 and packet[:6] == b"\xff" * 6 and packet[6:12] == MAC and packet[-6:] == MAC
    assert _packet.parse(b"junk" + packet) == (MAC, b"")
    secure = _packet.build(MAC, _packet.parse_secureon("01:02:03:04:05:06"))
    assert len(secure) == 108 and _packet.parse(secure) == (MAC, bytes(range(1, 7)))
    assert _packet.parse_secureon("192.168.1.2") == bytes([192, 168, 1, 2])
    assert _packet.parse(b"\xff" * 6 + MAC * 15) is None
    assert _packet.parse_mac("02-50-4E-57-4F-4C") == MAC
    for bad in ("02:50:4e", "zz:50:4e:57:4f:4c"):
        with pytest.raises(_packet.PacketError):
            _packet.parse_mac(bad)
    with pytest.raises(_packet.PacketError):
        _packet.parse_secureon("1.2.3")


class FakeSocket:
    def __init__(self, failures: t.Dict[str, int]) -> None:
        self.failures = failures
        self.sent: t.List[t.Tuple[bytes, t.Tuple[str, int]]] = []

    def sendto(self, data: bytes, where: t.Tuple[str, int]) -> int:
        if where[0] in self.failures:
            raise OSError(self.failures[where[0]], "x")
        self.sent.append((data, where))
        return len(data)

    def close(self) -> None:
        pass


def test_sender_counts_and_classifies_failures() -> None:
    fake = FakeSocket({"10.1.2.255": errno.EPERM, "10.9.9.255": errno.ENETUNREACH})
    socks: t.Dict[int, t.Any] = {socket.AF_INET: fake, socket.AF_INET6: fake}
    records = _wire.send([{"address": "239.255.0.9"}, {"address": "10.1.2.255"}, {"address": "ff05::9"},
                          {"address": "10.9.9.255"}], 9, MAC, count=2, interval=0, sockets=socks,
                         clock=lambda: 1000.0, sleep=lambda s: None)
    by = {r["address"]: r for r in records}
    assert by["239.255.0.9"]["sent"] == 2 and by["239.255.0.9"]["ok"] and by["239.255.0.9"]["first_sent_ms"] == 1000000
    assert by["10.1.2.255"]["failure"]["class"] == "server_firewall"
    assert "EPERM" in by["10.1.2.255"]["failure"]["message"]
    assert by["10.9.9.255"]["failure"]["class"] == "no_route"
    assert len(fake.sent) == 4 and all(d == _packet.build(MAC) and w[1] == 9 for d, w in fake.sent)


def test_listener_on_loopback_records_destination_and_source() -> None:
    try:
        listener = _wire.Listener(0, ipv6=False)
    except OSError as exc:  # pragma: no cover
        pytest.skip(f"no UDP socket: {exc}")
    port = listener.socks[0].getsockname()[1]

    def later() -> None:
        time.sleep(0.2)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 37)
            sock.sendto(_packet.build(b"\x02" * 6), ("127.0.0.1", port))   # another MAC: ignored
            sock.sendto(_packet.build(MAC), ("127.0.0.1", port))

    thread = threading.Thread(target=later)
    thread.start()
    started = time.monotonic()
    arrivals = listener.collect(5, MAC, expect=["127.0.0.1"])
    thread.join()
    assert time.monotonic() - started < 3, "expect ends the listener early"
    assert len(arrivals) == 1 and arrivals[0]["destination"] == "127.0.0.1" and arrivals[0]["source"] == "127.0.0.1"
    assert arrivals[0]["mac"] == "02:50:4e:57:4f:4c" and arrivals[0]["at"].endswith("Z")
    assert arrivals[0]["ttl"] == 37  # what the sender set, read from the packet
    assert listener.socks == []


def test_listener_stops_after_the_stop_file(tmp_path: t.Any) -> None:
    listener = _wire.Listener(0, ipv6=False)
    stop = tmp_path / "done"
    threading.Timer(0.2, stop.write_text, args=("x",)).start()
    started = time.monotonic()
    assert listener.collect(10, MAC, stop_file=str(stop), grace=0.2) == []
    assert time.monotonic() - started < 3
