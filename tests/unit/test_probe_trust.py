"""Who vouches for a verified chain: expected_issuer forms, inspection product names, locally added anchors."""
from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import typing as t
from pathlib import Path

import pytest
from ansible_collections.protectnet.epns.plugins.module_utils._probe import _engine as P
from ansible_collections.protectnet.epns.plugins.module_utils._probe import _trust as T
from ansible_collections.protectnet.epns.plugins.module_utils._probe._options import (
    ProbeConfigError,
    ProbeOptions,
    prepare,
)
from ansible_collections.protectnet.epns.plugins.module_utils._probe._x509 import parse_certificate

SNI = "epns.eset.com"


def der(pem: Path) -> bytes:
    return subprocess.run(["openssl", "x509", "-in", str(pem), "-outform", "DER"], check=True,
                          capture_output=True).stdout


def spki_sha256(pem: Path) -> bytes:
    return parse_certificate(der(pem)).spki_sha256()


@pytest.mark.parametrize("value, kind", [
    ("Test EPNS CA", "name"),
    ("CN=PN Lab Root CA,O=PN Lab", "dn"),
    ("o = PN Lab ; cn=PN Lab Root CA", "dn"),
    ("sha256//" + base64.b64encode(b"\x01" * 32).decode(), "pin"),
    ("01" * 32, "pin"),
    ("sha256:" + ":".join(["ab"] * 32), "pin"),
])
def test_expected_issuer_forms(value: str, kind: str) -> None:
    assert T.parse_expected_issuer(value).kind == kind


@pytest.mark.parametrize("value, words", [
    ("sha256//not base64!", "base64"),
    ("sha256//" + base64.b64encode(b"\x01" * 20).decode(), "20 bytes"),
    ("sha256:abcd", "64 hex digits"),
    ("CN=x,Nonsense=y", "unknown attribute 'Nonsense'"),
    ("CN=", "ATTRIBUTE=value"),
    ("  ", "empty"),
])
def test_bad_expected_issuer_names_value_and_forms(value: str, words: str) -> None:
    with pytest.raises(ProbeConfigError) as info:
        prepare(ProbeOptions(expected_issuer=value))
    assert words in str(info.value) and repr(value) in str(info.value) and "sha256//BASE64" in str(info.value)


@pytest.mark.parametrize("value", ["x", ["ok", ""], [3]])
def test_bad_inspection_issuers(value: t.Any) -> None:
    with pytest.raises(ProbeConfigError, match="inspection_issuers"):
        prepare(ProbeOptions(inspection_issuers=value))


def test_issuer_spec_matching(pki: t.Any) -> None:
    leaf, ca = parse_certificate(der(pki.server_cert)), parse_certificate(der(pki.ca))
    pin = base64.b64encode(ca.spki_sha256()).decode()
    table = [
        ("Test EPNS CA", True), ("PROTECTNET TEST ", True), ("Corp Inspection CA", False),
        ("CN=Test EPNS CA,O=protectnet test", True), ("o=Protectnet  Test, cn=test epns ca", True),
        ("CN=Test EPNS CA", False),   # a DN is matched whole, not as a part
        (f"sha256//{pin}", True), (ca.spki_sha256().hex(), True), ("00" * 32, False),
    ]
    for value, expected in table:
        assert T.issuer_spec_matches(T.parse_expected_issuer(value), leaf, [ca]) is expected, value
    # the leaf's own key is not an issuing CA's
    assert not T.issuer_spec_matches(T.parse_expected_issuer(leaf.spki_sha256().hex()), leaf, [ca])


def test_inspection_names_match_cn_o_ou_with_wildcards(pki: t.Any) -> None:
    leaf, ca = parse_certificate(der(pki.rogue_cert)), parse_certificate(der(pki.rogue_ca))
    for names, hit in (([], None), (["middlebox inc"], "CN=Corp Inspection CA, O=Middlebox Inc"),
                       (["Corp * CA"], "CN=Corp Inspection CA, O=Middlebox Inc"), (["FortiGate CA"], None)):
        found = T.inspection_match(T.inspection_names(names), leaf, [ca])
        assert (found[1] if found else None) == hit, names
    assert T.inspection_names(None) == T.DEFAULT_INSPECTION_NAMES
    assert all(entry.source.startswith("https://") for entry in T.DEFAULT_INSPECTION_NAMES)


@pytest.fixture
def anchor_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    local, shipped = tmp_path / "local", tmp_path / "shipped"
    local.mkdir()
    shipped.mkdir()
    monkeypatch.setattr(T, "LOCAL_ANCHOR_DIRS", (str(local),))
    monkeypatch.setattr(T, "SHIPPED_DIRS", (str(shipped),))
    monkeypatch.setattr(T, "DEBIAN_SHIPPED", str(tmp_path / "none"))
    return local, shipped


def _assess(pki: t.Any, leaf_pem: Path, ca_pem: Path, expected: str | None = None) -> T.TrustFinding:
    ctx = prepare(ProbeOptions(ca_path=str(ca_pem))).context
    store = T.TrustStore(ctx, system_store=True)
    spec = T.parse_expected_issuer(expected) if expected else None
    return T.assess(store, parse_certificate(der(leaf_pem)), [], spec, (), SNI)


def test_locally_added_anchor_is_interception(pki: t.Any, anchor_dirs: tuple[Path, Path]) -> None:
    local, _ = anchor_dirs
    assert not _assess(pki, pki.rogue_cert, pki.rogue_ca).intercepted
    shutil.copy(pki.rogue_ca, local / "corp.crt")
    finding = _assess(pki, pki.rogue_cert, pki.rogue_ca)
    assert finding.intercepted and str(local / "corp.crt") in finding.message
    assert "CN=Corp Inspection CA, O=Middlebox Inc" in finding.message
    # the user said who the issuer is: that wins over where the anchor came from
    assert not _assess(pki, pki.rogue_cert, pki.rogue_ca, "Corp Inspection CA").intercepted
    assert _assess(pki, pki.rogue_cert, pki.rogue_ca, "Test EPNS CA").intercepted


def test_local_copy_of_a_shipped_root_is_not_interception(pki: t.Any, anchor_dirs: tuple[Path, Path]) -> None:
    local, shipped = anchor_dirs
    shutil.copy(pki.ca, local / "again.crt")
    shutil.copy(pki.ca, shipped / "Test_EPNS_CA.crt")
    finding = _assess(pki, pki.server_cert, pki.ca)
    assert not finding.intercepted and finding.anchor == "CN=Test EPNS CA, O=protectnet test"


def test_local_anchors_are_read_once_per_run(pki: t.Any, anchor_dirs: tuple[Path, Path],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    local, _ = anchor_dirs
    shutil.copy(pki.rogue_ca, local / "corp.crt")
    store = T.TrustStore(prepare(ProbeOptions(ca_path=str(pki.rogue_ca))).context, system_store=True)
    reads: list[str] = []
    real = T._read_certs
    monkeypatch.setattr(T, "_read_certs", lambda path: reads.append(path) or real(path))
    leaf = parse_certificate(der(pki.rogue_cert))
    for _ in range(3):
        assert T.assess(store, leaf, [], None, (), SNI).intercepted
    assert reads == [str(local / "corp.crt")]


def test_inspection_ca_via_ca_path_is_intercepted(pki: t.Any, lo: t.Any, servers: list,
                                                  tmp_path: Path) -> None:
    # A CA named like a FortiGate's default inspection CA, trusted through ca_path, no option set.
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", "fg.key", "-out", "fg.pem", "-days", "3",
                    "-subj", "/C=US/O=Fortinet/OU=Certificate Authority/CN=FortiGate CA",
                    "-addext", "basicConstraints=critical,CA:TRUE"], cwd=tmp_path, check=True, capture_output=True)
    shutil.copy(tmp_path / "fg.pem", pki.root / "fg.pem")
    shutil.copy(tmp_path / "fg.key", pki.root / "fg.key")
    cert, key = pki.issue("fg-leaf", f"/CN={SNI}", "fg", f"DNS:{SNI}")
    server = lo.LoopbackServer(lo.mqtt_broker(), lo.tls_server_context(cert, key))
    servers.append(server)

    def probe(**extra: t.Any) -> dict:
        return P.run_probe(ProbeOptions(host="127.0.0.1", server_name=SNI, ca_path=str(pki.root / "fg.pem"),
                                           primary_port=server.port, fallback_port=lo.free_port(), timeout=4.0,
                                           connect_timeout=1.0, **extra))["paths"][0]

    path = probe()
    assert path["failure"]["class"] == "tls_intercepted"
    assert "FortiGate" in path["failure"]["message"] and "fortinet.com" in path["failure"]["message"]
    assert path["attempts"][0]["tls"]["verified"] is True
    assert probe(inspection_issuers=[])["ok"]
    pin = base64.b64encode(hashlib.sha256(parse_certificate(der(pki.root / "fg.pem")).spki_der).digest()).decode()
    assert probe(inspection_issuers=[], expected_issuer=f"sha256//{pin}")["ok"]
    assert probe(inspection_issuers=[], expected_issuer="00" * 32)["failure"]["class"] == "tls_intercepted"
