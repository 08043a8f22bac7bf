# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""The magic packet: 6 x 0xFF, the MAC 16 times, then an optional SecureOn password (4 or 6 bytes)."""
from __future__ import annotations

import re
import typing as t

_MAC_RE = re.compile(r"^[0-9a-f]{12}$")


class PacketError(ValueError):
    pass


def parse_mac(text: str, what: str = "mac") -> bytes:
    raw = re.sub(r"[:\-.\s]", "", str(text).strip().lower())
    if not _MAC_RE.match(raw):
        raise PacketError(f"{what} {text!r} is not a MAC address (expected e.g. 02:00:5e:10:00:01)")
    return bytes.fromhex(raw)


def parse_secureon(text: t.Optional[str]) -> bytes:
    """SecureOn password: 6 bytes written like a MAC, or 4 bytes written as an IPv4 address (both are in use)."""
    if not text:
        return b""
    value = str(text).strip()
    if re.match(r"^\d+\.\d+\.\d+\.\d+$", value):
        parts = [int(p) for p in value.split(".")]
        if any(p > 255 for p in parts):
            raise PacketError("secureon: a 4-byte password is written as four numbers 0-255 (a.b.c.d)")
        return bytes(parts)
    try:
        return parse_mac(value, "secureon")
    except PacketError:
        raise PacketError("secureon: expected 6 bytes like a MAC (01:02:03:04:05:06) or 4 bytes as a.b.c.d") from None


def format_mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def build(mac: bytes, secureon: bytes = b"") -> bytes:
    if len(mac) != 6 or len(secureon) not in (0, 4, 6):
        raise PacketError("a magic packet needs a 6-byte MAC and a 0, 4 or 6-byte SecureOn password")
    return b"\xff" * 6 + mac * 16 + secureon


def parse(payload: bytes) -> t.Optional[t.Tuple[bytes, bytes]]:
    """(mac, secureon) if payload contains a magic packet (anywhere, as the NIC looks for it), else None."""
    start = payload.find(b"\xff" * 6)
    while start != -1:
        body = payload[start + 6:]
        # skip extra 0xff bytes before the MAC repetitions (a MAC may not start with 0xff... it could; try each)
        if len(body) >= 96:
            mac = body[:6]
            if body[:96] == mac * 16:
                rest = body[96:]
                secureon = rest[:6] if len(rest) >= 6 else rest[:4] if len(rest) >= 4 else b""
                return mac, secureon
        start = payload.find(b"\xff" * 6, start + 1)
    return None
