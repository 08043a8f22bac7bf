# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# A small, bounded DER reader for the few fields of a peer certificate the probe reports. The
# standard library can only describe a certificate it has verified; when verification fails (an
# intercepting proxy, a missing CA) the probe still has to say who issued what it was shown.
# Nothing here trusts the input: every length is checked against the bytes that exist.
from __future__ import annotations

import hashlib
import ipaddress
import re
import typing as t

MAX_CERT_BYTES = 64 * 1024

OID_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.5": "serialNumber",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "street",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.12": "title",
    "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
    "1.2.840.113549.1.9.1": "emailAddress",
}
OID_SAN = "2.5.29.17"
OID_SKI = "2.5.29.14"
OID_AKI = "2.5.29.35"

_TAG_INTEGER = 0x02
_TAG_OCTET_STRING = 0x04
_TAG_UTCTIME = 0x17
_TAG_GENERALIZEDTIME = 0x18
_TAG_SEQUENCE = 0x30
_TAG_SET = 0x31

# How each ASN.1 string type turns into text; T61 is close enough to Latin-1 for display.
_STRING_CODECS = {
    0x0C: "utf-8", 0x12: "ascii", 0x13: "ascii", 0x14: "latin-1", 0x16: "ascii",
    0x1A: "ascii", 0x1C: "utf-32-be", 0x1E: "utf-16-be",
}


class X509Error(ValueError):
    """Bytes that are not a DER certificate this reader understands."""


class Certificate(t.NamedTuple):
    subject: t.List[t.Tuple[str, str]]   # (attribute, value) in DER order, most general first
    issuer: t.List[t.Tuple[str, str]]
    sans: t.List[str]
    not_before: str                  # ISO 8601, UTC
    not_after: str
    sha256: str                      # hex of the whole DER, lower case, no separators
    # What finding a certificate's issuer takes (RFC 5280 4.1.2.4, 4.2.1.1, 4.2.1.2): the names as
    # encoded (a chain links them byte for byte), the key identifiers, and the public key.
    subject_der: bytes = b""
    issuer_der: bytes = b""
    spki_der: bytes = b""
    ski: t.Optional[bytes] = None
    aki: t.Optional[bytes] = None

    def spki_sha256(self) -> bytes:
        return hashlib.sha256(self.spki_der).digest()

    def self_issued(self) -> bool:
        return bool(self.subject_der) and self.subject_der == self.issuer_der

    def subject_text(self) -> str:
        return format_name(self.subject)

    def issuer_text(self) -> str:
        return format_name(self.issuer)

    def attribute(self, which: str, name: str) -> t.List[str]:
        rdns = self.subject if which == "subject" else self.issuer
        return [value for attr, value in rdns if attr == name]


class _TLV(t.NamedTuple):
    tag: int
    start: int   # first content byte
    end: int     # one past the last content byte
    offset: int = 0  # the tag byte


def _read_tlv(data: bytes, pos: int, limit: int) -> _TLV:
    offset = pos
    if pos + 2 > limit:
        raise X509Error(f"truncated DER at offset {pos}")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise X509Error(f"multi-byte DER tag at offset {pos} is not supported")
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        # Indefinite lengths are BER, not DER; more than 4 length bytes exceeds any certificate.
        if count == 0 or count > 4:
            raise X509Error(f"invalid DER length at offset {pos - 1}")
        if pos + count > limit:
            raise X509Error(f"truncated DER length at offset {pos}")
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    if pos + length > limit:
        raise X509Error(f"DER element at offset {pos} runs past the end of its container")
    return _TLV(tag, pos, pos + length, offset)


def _children(data: bytes, parent: _TLV) -> t.List[_TLV]:
    out = []
    pos = parent.start
    while pos < parent.end:
        child = _read_tlv(data, pos, parent.end)
        out.append(child)
        pos = child.end
        if len(out) > 4096:
            raise X509Error("too many DER elements")
    return out


def _expect(tlv: _TLV, tag: int, what: str) -> _TLV:
    if tlv.tag != tag:
        raise X509Error(f"{what}: expected DER tag 0x{tag:02x}, found 0x{tlv.tag:02x}")
    return tlv


def _oid(raw: bytes) -> str:
    if not raw or raw[-1] & 0x80:
        raise X509Error("malformed OID")
    arcs: t.List[int] = []
    value = 0
    for byte in raw:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(arc) for arc in head + arcs[1:])


def _string(tag: int, raw: bytes) -> str:
    codec = _STRING_CODECS.get(tag)
    if codec is None:
        return "#" + raw.hex()
    try:
        return raw.decode(codec)
    except UnicodeDecodeError:
        return raw.decode(codec, errors="replace")


def _name(data: bytes, tlv: _TLV) -> t.List[t.Tuple[str, str]]:
    _expect(tlv, _TAG_SEQUENCE, "Name")
    out = []
    for rdn in _children(data, tlv):
        _expect(rdn, _TAG_SET, "RelativeDistinguishedName")
        for atv in _children(data, rdn):
            parts = _children(data, _expect(atv, _TAG_SEQUENCE, "AttributeTypeAndValue"))
            if len(parts) != 2:
                raise X509Error("AttributeTypeAndValue must have two parts")
            oid = _oid(data[parts[0].start:parts[0].end])
            value = parts[1]
            out.append((OID_NAMES.get(oid, oid), _string(value.tag, data[value.start:value.end])))
    return out


def _time(data: bytes, tlv: _TLV) -> str:
    try:
        text = data[tlv.start:tlv.end].decode("ascii")
    except UnicodeDecodeError:
        raise X509Error("certificate time is not ASCII") from None
    if tlv.tag == _TAG_UTCTIME and len(text) == 13 and text.endswith("Z") and text[:12].isdigit():
        # RFC 5280 4.1.2.5.1: two-digit years 50-99 are 19xx.
        year = int(text[:2])
        text = ("19" if year >= 50 else "20") + text
    elif not (tlv.tag == _TAG_GENERALIZEDTIME and len(text) == 15 and text.endswith("Z")
              and text[:14].isdigit()):
        raise X509Error(f"certificate time {text!r} is not in RFC 5280 form")
    return f"{text[0:4]}-{text[4:6]}-{text[6:8]}T{text[8:10]}:{text[10:12]}:{text[12:14]}Z"


class _Extensions(t.NamedTuple):
    sans: t.List[str]
    ski: t.Optional[bytes]
    aki: t.Optional[bytes]


def _extensions(data: bytes, extensions: _TLV) -> _Extensions:
    seq = _children(data, extensions)
    if len(seq) != 1:
        raise X509Error("malformed extensions")
    sans: t.List[str] = []
    ski = aki = None
    for ext in _children(data, _expect(seq[0], _TAG_SEQUENCE, "Extensions")):
        parts = _children(data, _expect(ext, _TAG_SEQUENCE, "Extension"))
        if len(parts) < 2:
            raise X509Error("malformed extension")
        oid = _oid(data[parts[0].start:parts[0].end])
        value = _expect(parts[-1], _TAG_OCTET_STRING, "extnValue")
        if oid == OID_SAN:
            sans = _sans(data, _read_tlv(data, value.start, value.end))
        elif oid == OID_SKI:
            inner = _expect(_read_tlv(data, value.start, value.end), _TAG_OCTET_STRING, "SubjectKeyIdentifier")
            ski = data[inner.start:inner.end]
        elif oid == OID_AKI:
            aki = _key_identifier(data, _read_tlv(data, value.start, value.end))
    return _Extensions(sans, ski, aki)


def _key_identifier(data: bytes, aki: _TLV) -> t.Optional[bytes]:
    # AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING OPTIONAL, ... }
    for part in _children(data, _expect(aki, _TAG_SEQUENCE, "AuthorityKeyIdentifier")):
        if part.tag == 0x80:
            return data[part.start:part.end]
    return None


def _sans(data: bytes, inner: _TLV) -> t.List[str]:
    names: t.List[str] = []
    for gn in _children(data, _expect(inner, _TAG_SEQUENCE, "GeneralNames")):
        raw = data[gn.start:gn.end]
        # Only the name kinds TLS matches a server against; a name or an address speaks
        # for itself, so no "DNS:"/"IP:" prefix.
        if gn.tag == 0x82:
            names.append(_string(0x16, raw))
        elif gn.tag == 0x87 and len(raw) in (4, 16):
            names.append(str(ipaddress.ip_address(raw)))
    return names


def _whole(data: bytes, tlv: _TLV) -> bytes:
    """The element with its tag and length, as it was encoded."""
    return data[tlv.offset:tlv.end]


def parse_certificate(der: bytes) -> Certificate:
    if not isinstance(der, (bytes, bytearray)):
        raise X509Error("certificate must be bytes")
    der = bytes(der)
    if len(der) > MAX_CERT_BYTES:
        raise X509Error(f"certificate is larger than {MAX_CERT_BYTES} bytes")
    try:
        return _parse(der)
    except (IndexError, ValueError) as exc:
        if isinstance(exc, X509Error):
            raise
        raise X509Error(f"malformed certificate: {exc}") from None


def _parse(der: bytes) -> Certificate:
    cert = _expect(_read_tlv(der, 0, len(der)), _TAG_SEQUENCE, "Certificate")
    if cert.end != len(der):
        raise X509Error(f"{len(der) - cert.end} bytes after the certificate")
    top = _children(der, cert)
    if len(top) != 3:
        raise X509Error(f"Certificate must have three parts, has {len(top)}")
    tbs = _children(der, _expect(top[0], _TAG_SEQUENCE, "TBSCertificate"))
    i = 0
    if tbs and tbs[0].tag == 0xA0:
        i = 1
    # serial, signature algorithm, issuer, validity, subject, subjectPublicKeyInfo
    if len(tbs) < i + 6:
        raise X509Error("TBSCertificate is incomplete")
    _expect(tbs[i], _TAG_INTEGER, "serialNumber")
    issuer = _name(der, tbs[i + 2])
    validity = _children(der, _expect(tbs[i + 3], _TAG_SEQUENCE, "Validity"))
    if len(validity) != 2:
        raise X509Error("Validity must have two times")
    subject = _name(der, tbs[i + 4])
    _expect(tbs[i + 5], _TAG_SEQUENCE, "SubjectPublicKeyInfo")
    ext = _Extensions([], None, None)
    for extra in tbs[i + 6:]:
        if extra.tag == 0xA3:
            ext = _extensions(der, extra)
    return Certificate(
        subject=subject,
        issuer=issuer,
        sans=ext.sans,
        not_before=_time(der, validity[0]),
        not_after=_time(der, validity[1]),
        sha256=hashlib.sha256(der).hexdigest(),
        subject_der=_whole(der, tbs[i + 4]),
        issuer_der=_whole(der, tbs[i + 2]),
        spki_der=_whole(der, tbs[i + 5]),
        ski=ext.ski,
        aki=ext.aki,
    )


def _escape_value(value: str) -> str:
    # RFC 4514 escaping, plus control characters, so a hostile name cannot split a log line.
    out = []
    for i, ch in enumerate(value):
        if ch in ',+"\\<>;=' or (i == 0 and ch in "# ") or (i == len(value) - 1 and ch == " "):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def format_name(rdns: t.List[t.Tuple[str, str]]) -> str:
    """RFC 4514 order and escaping, most specific first: "CN=..., O=..., C=..."."""
    return ", ".join(f"{attr}={_escape_value(value)}" for attr, value in reversed(rdns))


_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)


def pem_certificates(text: str, limit: int = 1000) -> t.List[bytes]:
    """The DER of each certificate in a PEM text (a file of one, or a bundle), skipping broken ones."""
    import base64
    import binascii
    out = []
    for match in _PEM_CERT.finditer(text):
        try:
            out.append(base64.b64decode("".join(match.group(1).split()), validate=True))
        except (binascii.Error, ValueError):
            continue
        if len(out) >= limit:
            break
    return out


def certificates_from_tls_handshake(message: bytes, tls13: bool) -> t.List[bytes]:
    """DER certificates from a TLS Certificate handshake message (type, 3-byte length, body)."""
    if len(message) < 4 or message[0] != 11:
        raise X509Error("not a TLS Certificate message")
    pos, end = 4, min(len(message), 4 + int.from_bytes(message[1:4], "big"))
    if tls13:
        if pos >= end:
            raise X509Error("truncated TLS Certificate message")
        pos += 1 + message[pos]   # certificate_request_context
    if pos + 3 > end:
        raise X509Error("truncated TLS Certificate message")
    list_end = min(end, pos + 3 + int.from_bytes(message[pos:pos + 3], "big"))
    pos += 3
    certs: t.List[bytes] = []
    while pos + 3 <= list_end and len(certs) < 16:
        size = int.from_bytes(message[pos:pos + 3], "big")
        pos += 3
        if pos + size > list_end:
            raise X509Error("truncated certificate in TLS Certificate message")
        certs.append(message[pos:pos + size])
        pos += size
        if tls13:
            if pos + 2 > list_end:
                raise X509Error("truncated TLS 1.3 certificate entry")
            pos += 2 + int.from_bytes(message[pos:pos + 2], "big")
    return certs
