"""The bounded DER reader, against certificates openssl makes at test time."""
from __future__ import annotations

import hashlib
import ssl
import subprocess
import typing as t
from pathlib import Path

import pytest
from ansible_collections.protectnet.epns.plugins.module_utils._probe import _x509 as X


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def der_of(pem: Path) -> bytes:
    return subprocess.run(["openssl", "x509", "-in", str(pem), "-outform", "DER"], check=True,
                          capture_output=True).stdout


def self_signed(tmp_path: Path, subject: str, *extra: str) -> bytes:
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-utf8",
            "-keyout", "k.pem", "-out", "c.pem", "-days", "3", "-subj", subject, *extra, cwd=tmp_path)
    return der_of(tmp_path / "c.pem")


def test_server_certificate_fields(pki: t.Any) -> None:
    der = der_of(pki.server_cert)
    cert = X.parse_certificate(der)
    assert cert.subject_text() == "CN=epns.eset.com"
    assert cert.issuer_text() == "CN=Test EPNS CA, O=protectnet test"
    assert cert.attribute("issuer", "O") == ["protectnet test"]
    assert cert.sans == ["epns.eset.com", "127.0.0.1"]
    assert cert.sha256 == hashlib.sha256(der).hexdigest()
    # ssl's own decoder as the reference for the validity date.
    decoded = ssl._ssl._test_decode_cert(str(pki.server_cert))  # type: ignore[attr-defined]
    expected = ssl.cert_time_to_seconds(decoded["notAfter"])
    import calendar
    import time
    assert calendar.timegm(time.strptime(cert.not_after, "%Y-%m-%dT%H:%M:%SZ")) == expected


def test_unicode_and_hostile_strings(tmp_path: Path) -> None:
    cn = 'Ünïcødé <script>alert("x")</script> \'q\', +;=\\'
    escaped = "".join("\\" + ch if ch in "/\\+" else ch for ch in cn)
    der = self_signed(tmp_path, f"/O=Ex, Corp/CN={escaped}",
                      "-addext", "subjectAltName=DNS:a.example,DNS:*.b.example,IP:2001:db8::1")
    cert = X.parse_certificate(der)
    assert cert.attribute("subject", "CN") == [cn]
    assert cert.attribute("subject", "O") == ["Ex, Corp"]
    assert cert.sans == ["a.example", "*.b.example", "2001:db8::1"]
    text = cert.subject_text()
    # RFC 4514 escaping keeps a hostile value from being read as several attributes.
    assert text.startswith("CN=Ünïcødé \\<script\\>alert(\\\"x\\\")\\</script\\>")
    assert text.endswith("'q'\\, \\+\\;\\=\\\\, O=Ex\\, Corp")


def test_control_characters_are_escaped(tmp_path: Path) -> None:
    der = self_signed(tmp_path, "/CN=x")
    # Swap the 1-byte CN value for a tab so the structure stays valid.
    cert_bytes = der.replace(b"\x0c\x01x", b"\x0c\x01\t", 2)
    cert = X.parse_certificate(cert_bytes)
    assert cert.subject_text() == "CN=\\09"


def test_bmpstring_and_generalized_time() -> None:
    assert X._string(0x1E, "Zoë".encode("utf-16-be")) == "Zoë"
    tlv = X._TLV(0x18, 0, 15)
    assert X._time(b"20500101120000Z", tlv) == "2050-01-01T12:00:00Z"
    assert X._time(b"491231235959Z", X._TLV(0x17, 0, 13)) == "2049-12-31T23:59:59Z"
    assert X._time(b"500101000000Z", X._TLV(0x17, 0, 13)) == "1950-01-01T00:00:00Z"


@pytest.mark.parametrize("cut", [0, 1, 2, 3, 10, 100, -1, -40])
def test_truncated_der_is_a_clean_error(pki: t.Any, cut: int) -> None:
    der = der_of(pki.server_cert)
    with pytest.raises(X.X509Error):
        X.parse_certificate(der[:cut])


@pytest.mark.parametrize("data", [
    b"", b"\x00", b"\x30", b"\x30\x80\x00\x00", b"\x30\x85\xff\xff\xff\xff\xff",
    b"\x30\x84\x7f\xff\xff\xff", b"\x1f\x01\x00", b"-----BEGIN CERTIFICATE-----",
    bytes(range(256)), b"\x30\x03\x02\x01\x00", b"\x30\x00",
])
def test_garbage_is_a_clean_error(data: bytes) -> None:
    with pytest.raises(X.X509Error):
        X.parse_certificate(data)


def test_trailing_bytes_and_oversize(pki: t.Any) -> None:
    der = der_of(pki.server_cert)
    with pytest.raises(X.X509Error, match="after the certificate"):
        X.parse_certificate(der + b"\x00")
    with pytest.raises(X.X509Error, match="larger than"):
        X.parse_certificate(b"\x30" * (X.MAX_CERT_BYTES + 1))


def test_every_single_byte_corruption_is_handled(pki: t.Any) -> None:
    # Flipping any byte must give a certificate or an X509Error, never another exception.
    der = der_of(pki.server_cert)
    for i in range(len(der)):
        mutated = der[:i] + bytes((der[i] ^ 0xFF,)) + der[i + 1:]
        try:
            X.parse_certificate(mutated)
        except X.X509Error:
            pass


def test_pem_certificates_reads_one_certificate(pki: t.Any) -> None:
    assert X.pem_certificates(pki.server_cert.read_text()) == [der_of(pki.server_cert)]


def test_certificates_from_tls_handshake(pki: t.Any) -> None:
    der = der_of(pki.server_cert)
    n = len(der).to_bytes(3, "big")
    tls12_body = (len(der) + 3).to_bytes(3, "big") + n + der
    msg12 = b"\x0b" + len(tls12_body).to_bytes(3, "big") + tls12_body
    assert X.certificates_from_tls_handshake(msg12, tls13=False) == [der]
    entry = n + der + b"\x00\x00"
    tls13_body = b"\x00" + len(entry).to_bytes(3, "big") + entry
    msg13 = b"\x0b" + len(tls13_body).to_bytes(3, "big") + tls13_body
    assert X.certificates_from_tls_handshake(msg13, tls13=True) == [der]
    with pytest.raises(X.X509Error):
        X.certificates_from_tls_handshake(msg13[:40], tls13=True)
    with pytest.raises(X.X509Error):
        X.certificates_from_tls_handshake(b"\x0c\x00\x00\x00", tls13=True)


def _openssl_text(tmp_path: Path, *args: str) -> str:
    return subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True, text=True).stdout


def test_key_identifiers_names_and_public_key_match_openssl(tmp_path: Path) -> None:
    root = self_signed(tmp_path, "/O=Example Corp/CN=Example Corp Root",
                       "-addext", "basicConstraints=critical,CA:TRUE")
    (tmp_path / "root.pem").write_text((tmp_path / "c.pem").read_text())
    (tmp_path / "root.key").write_text((tmp_path / "k.pem").read_text())
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "l.key",
            "-out", "l.csr", "-subj", "/CN=epns.eset.com", cwd=tmp_path)
    (tmp_path / "l.ext").write_text("subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    openssl("x509", "-req", "-in", "l.csr", "-CA", "root.pem", "-CAkey", "root.key", "-CAcreateserial",
            "-days", "3", "-extfile", "l.ext", "-out", "l.pem", cwd=tmp_path)
    ca, leaf = X.parse_certificate(root), X.parse_certificate(der_of(tmp_path / "l.pem"))
    ski_text = _openssl_text(tmp_path, "x509", "-in", "root.pem", "-noout", "-ext", "subjectKeyIdentifier")
    assert ca.ski is not None and ca.ski.hex(":").upper() in ski_text
    assert leaf.aki == ca.ski and leaf.ski and leaf.ski != ca.ski
    # A chain links by the encoded names: the leaf's issuer is the CA's subject, byte for byte.
    assert leaf.issuer_der == ca.subject_der and ca.self_issued() and not leaf.self_issued()
    spki = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "root.pem"), "-noout", "-pubkey"],
                          check=True, capture_output=True).stdout
    spki_der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=spki, check=True,
                              capture_output=True).stdout
    assert ca.spki_der == spki_der
    assert ca.spki_sha256() == hashlib.sha256(spki_der).digest()


def test_certificate_without_key_identifiers(tmp_path: Path) -> None:
    cert = X.parse_certificate(self_signed(tmp_path, "/CN=bare", "-addext", "subjectKeyIdentifier=none",
                                           "-addext", "authorityKeyIdentifier=none"))
    assert cert.ski is None and cert.aki is None
    assert cert.subject_der.startswith(b"\x30")


def test_pem_certificates_reads_bundles_and_skips_broken_blocks(tmp_path: Path) -> None:
    one = self_signed(tmp_path, "/CN=one")
    pem = (tmp_path / "c.pem").read_text()
    broken = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"
    assert X.pem_certificates(pem + broken + "junk\n" + pem) == [one, one]
    assert X.pem_certificates("no certificate here") == []
