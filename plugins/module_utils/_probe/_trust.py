# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# Who vouches for the certificate a verified TLS session showed: the chain the server sent, the
# trust anchor it ends in, and whether that anchor is one the distribution shipped or one someone
# added on this host (how a TLS-inspecting proxy's CA gets trusted), whether any CA of the chain
# carries the name an inspection product gives its CA, and whether the chain matches the
# expected_issuer the user gave (a name, a DN or a key pin). Standard library only (Python 3.8+).
from __future__ import annotations

import base64
import binascii
import fnmatch
import os
import re
import ssl
import threading
import typing as t

from ._x509 import (
    OID_NAMES,
    Certificate,
    X509Error,
    format_name,
    parse_certificate,
    pem_certificates,
)

# Where an administrator adds a CA so the whole system trusts it. Debian/Ubuntu (update-ca-certificates),
# RHEL/Fedora (update-ca-trust, both the anchors directory and the source directory itself), SUSE and Arch
# (p11-kit trust-source).
LOCAL_ANCHOR_DIRS = (
    "/usr/local/share/ca-certificates",
    "/etc/pki/ca-trust/source/anchors",
    "/etc/pki/ca-trust/source",
    "/etc/pki/trust/anchors",
    "/etc/ca-certificates/trust-source/anchors",
    "/etc/ca-certificates/trust-source",
)
# What the distributions ship. On Debian every shipped root in /etc/ssl/certs is a link into
# DEBIAN_SHIPPED; anything else there was put in by hand.
DEBIAN_SHIPPED = "/usr/share/ca-certificates"
DEBIAN_CERTS = "/etc/ssl/certs"
SHIPPED_DIRS = (DEBIAN_SHIPPED, "/usr/share/pki/ca-trust-source", "/usr/share/pki/trust",
                "/usr/share/ca-certificates/trust-source")
_MAX_FILES = 2000
_MAX_FILE_BYTES = 4 * 1024 * 1024


class InspectionName(t.NamedTuple):
    pattern: str    # compared with CN, O and OU of every CA in the chain; shell wildcards allowed
    product: str
    source: str


# The names inspection products give their signing CA by default, each from the vendor's (or, where
# marked, a vendor partner's) documentation. Products whose CA the administrator names (Palo Alto
# Networks, Check Point, Netskope, Forcepoint, ...) are not listed: see docs/tls-interception.md.
DEFAULT_INSPECTION_NAMES = (
    InspectionName("FortiGate CA", "a Fortinet FortiGate (its default SSL inspection CA, Fortinet_CA_SSL)",
                   "https://community.fortinet.com/t5/FortiCache/How-to-Regenerate-the-Fortinet-CA-SSLProxy-CA-"
                   "certificate-used/ta-p/198478"),
    InspectionName("Cisco Umbrella Root CA", "Cisco Umbrella (its standard root CA)",
                   "https://support.umbrella.com/hc/en-us/articles/360051373131"),
    InspectionName("Cisco Umbrella R1 CA", "Cisco Umbrella (its intermediate CA)",
                   "https://support.umbrella.com/hc/en-us/articles/360051373131"),
    InspectionName("SecurityAppliance_SSL_CA", "a Sophos Firewall (its built-in TLS inspection CA)",
                   "https://www.avanet.com/en/kb/how-to-install-ssl-ca-certificate-for-sophos-https-scanning/ "
                   "(Sophos partner)"),
)


class Anchor(t.NamedTuple):
    cert: Certificate
    where: str      # the file it was found in, or "the system store"
    local: bool     # added on this host, not shipped by the distribution


class IssuerSpec(t.NamedTuple):
    """A parsed expected_issuer: a plain CN/O, a distinguished name, or a SHA-256 key pin."""
    kind: str                               # "name", "dn" or "pin"
    text: str
    rdns: t.FrozenSet[t.Tuple[str, str]] = frozenset()
    pin: bytes = b""


def _norm(value: str) -> str:
    return " ".join(value.split()).casefold()


# ---- expected_issuer --------------------------------------------------------------------------

_ATTR_BY_NAME = {name.upper(): name for name in OID_NAMES.values()}
_ATTR_BY_NAME.update({"E": "emailAddress", "EMAIL": "emailAddress", "S": "ST"})
_HEX_PIN = re.compile(r"^(?:sha256:)?((?:[0-9a-fA-F]{2}:?){31}[0-9a-fA-F]{2})$")
ISSUER_FORMS = ("a CN or O value (e.g. 'DigiCert Global G2 TLS RSA SHA256 2020 CA1'), an RFC 4514 DN "
                "(e.g. 'CN=PN Lab Root CA,O=PN Lab'), or the SHA-256 of an issuing CA's public key as "
                "'sha256//BASE64' (curl --pinnedpubkey) or 64 hex digits (optionally 'sha256:' and colons)")


def parse_expected_issuer(value: str) -> IssuerSpec:
    """Raises ValueError naming what is wrong; the caller adds the value and the accepted forms."""
    text = value.strip()
    if text.lower().startswith("sha256//"):
        try:
            pin = base64.b64decode(text[8:], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the part after 'sha256//' is not base64") from None
        if len(pin) != 32:
            raise ValueError(f"the pin decodes to {len(pin)} bytes, a SHA-256 has 32")
        return IssuerSpec("pin", text, pin=pin)
    hex_pin = _HEX_PIN.match(text)
    if hex_pin:
        return IssuerSpec("pin", text, pin=bytes.fromhex(hex_pin.group(1).replace(":", "")))
    if text.lower().startswith("sha256"):
        raise ValueError("a pin must be 'sha256//' and 44 base64 characters, or 64 hex digits")
    if "=" in text:
        return IssuerSpec("dn", text, rdns=frozenset(_parse_dn(text)))
    return IssuerSpec("name", text)


def _split_unescaped(text: str, separators: str) -> t.List[str]:
    parts, current, i = [], "", 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current += text[i:i + 2]
            i += 2
            continue
        if ch in separators:
            parts.append(current)
            current = ""
        else:
            current += ch
        i += 1
    parts.append(current)
    return parts


def _unescape(value: str) -> str:
    def one(match: t.Match[str]) -> str:
        token = match.group(1)
        return bytes.fromhex(token).decode("latin-1") if len(token) == 2 else token
    return re.sub(r"\\([0-9a-fA-F]{2}|.)", one, value)


def _parse_dn(text: str) -> t.List[t.Tuple[str, str]]:
    out = []
    for part in _split_unescaped(text, ",+;"):
        attr, sep, value = part.partition("=")
        attr = attr.strip()
        if not sep or not attr or not value.strip():
            raise ValueError(f"{part.strip()!r} is not ATTRIBUTE=value")
        name = _ATTR_BY_NAME.get(attr.upper())
        if name is None and not re.match(r"^\d+(\.\d+)+$", attr):
            raise ValueError(f"unknown attribute {attr!r} (known: {', '.join(sorted(set(_ATTR_BY_NAME.values())))}, "
                             "or a dotted OID)")
        out.append((name or OID_NAMES.get(attr, attr), _norm(_unescape(value.strip()))))
    return out


def _rdn_set(rdns: t.List[t.Tuple[str, str]]) -> t.FrozenSet[t.Tuple[str, str]]:
    return frozenset((attr, _norm(value)) for attr, value in rdns)


def issuer_spec_matches(spec: IssuerSpec, leaf: Certificate, cas: t.List[Certificate]) -> bool:
    """A name matches a CN or O of the leaf's issuer or of a CA's subject; a DN matches the leaf's issuer
    or a CA's subject as a whole (any order, case and spacing); a pin matches a CA's public key."""
    if spec.kind == "pin":
        return any(ca.spki_der and ca.spki_sha256() == spec.pin for ca in cas)
    names = [leaf.issuer] + [ca.subject for ca in cas]
    if spec.kind == "dn":
        return any(_rdn_set(name) == spec.rdns for name in names)
    want = _norm(spec.text)
    return any(_norm(value) == want for name in names for attr, value in name if attr in ("CN", "O"))


# ---- inspection product names -----------------------------------------------------------------

def inspection_names(overrides: t.Optional[t.List[str]]) -> t.Tuple[InspectionName, ...]:
    if overrides is None:
        return DEFAULT_INSPECTION_NAMES
    return tuple(InspectionName(name, f"the inspection CA named {name!r}", "inspection_issuers")
                 for name in overrides)


def inspection_match(names: t.Sequence[InspectionName], leaf: Certificate,
                     cas: t.List[Certificate]) -> t.Optional[t.Tuple[InspectionName, str]]:
    """The first listed name that a CA of the chain carries, with that CA's name."""
    candidates = [(leaf.issuer, format_name(leaf.issuer))] + [(ca.subject, format_name(ca.subject)) for ca in cas]
    for entry in names:
        pattern = _norm(entry.pattern)
        for rdns, shown in candidates:
            if any(attr in ("CN", "O", "OU") and fnmatch.fnmatchcase(_norm(value), pattern) for attr, value in rdns):
                return entry, shown
    return None


# ---- the chain and its anchor -----------------------------------------------------------------

def _issues(ca: Certificate, cert: Certificate) -> bool:
    """ca's subject and key identifier are the ones cert names as its issuer (no signature check: the
    handshake verified the chain, this only finds which certificate it ended in)."""
    if not ca.subject_der or ca.subject_der != cert.issuer_der:
        return False
    return ca.ski is None or cert.aki is None or ca.ski == cert.aki


def chain_from(leaf: Certificate, sent: t.List[Certificate]) -> t.List[Certificate]:
    """The CAs the server sent that lead up from the leaf, in order."""
    chain: t.List[Certificate] = []
    current = leaf
    pool = list(sent)
    while not current.self_issued():
        issuer = next((ca for ca in pool if _issues(ca, current)), None)
        if issuer is None:
            break
        chain.append(issuer)
        pool.remove(issuer)
        current = issuer
    return chain


def _parse_all(ders: t.Iterable[bytes]) -> t.List[Certificate]:
    out = []
    for der in ders:
        try:
            out.append(parse_certificate(der))
        except X509Error:
            continue
    return out


def _read_certs(path: str) -> t.List[bytes]:
    try:
        if os.path.getsize(path) > _MAX_FILE_BYTES:
            return []
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError:
        return []
    if raw[:1] == b"\x30":
        return [raw]  # a DER file (RHEL and SUSE accept them in their anchor directories)
    return pem_certificates(raw.decode("latin-1"))


def _files_under(top: str) -> t.Iterator[str]:
    count = 0
    for root, dirs, files in os.walk(top, followlinks=True):
        dirs.sort()
        for name in sorted(files):
            count += 1
            if count > _MAX_FILES:
                return
            yield os.path.join(root, name)


def _debian_hand_placed() -> t.Iterator[str]:
    """Entries of /etc/ssl/certs that do not lead into what the ca-certificates package ships."""
    if not os.path.isdir(DEBIAN_SHIPPED) or not os.path.isdir(DEBIAN_CERTS):
        return
    shipped = os.path.realpath(DEBIAN_SHIPPED) + os.sep
    for name in sorted(os.listdir(DEBIAN_CERTS))[:_MAX_FILES]:
        path = os.path.join(DEBIAN_CERTS, name)
        real = os.path.realpath(path)
        if real.startswith(shipped) or not os.path.isfile(real):
            continue
        yield path


class TrustStore:
    """The anchors a verified chain may end in, read at most once per probe run (whose paths run in threads)."""

    def __init__(self, context: ssl.SSLContext, system_store: bool) -> None:
        self.context = context
        self.system_store = system_store
        self._lock = threading.RLock()
        self._local: t.Optional[t.List[t.Tuple[Certificate, str]]] = None
        self._store: t.Optional[t.List[Certificate]] = None
        self._shipped: t.Optional[t.Set[str]] = None

    def local_anchors(self) -> t.List[t.Tuple[Certificate, str]]:
        if self._local is None:
            found: t.List[t.Tuple[Certificate, str]] = []
            seen: t.Set[str] = set()
            paths = [p for top in LOCAL_ANCHOR_DIRS if os.path.isdir(top) for p in _files_under(top)]
            for path in [*paths, *_debian_hand_placed()]:
                ders = _read_certs(path)
                # A file of many certificates in /etc/ssl/certs is a bundle update-ca-certificates built.
                if path.startswith(DEBIAN_CERTS + os.sep) and len(ders) != 1:
                    continue
                for cert in _parse_all(ders):
                    if cert.sha256 not in seen:
                        seen.add(cert.sha256)
                        found.append((cert, path))
            self._local = found
        return self._local

    def store_anchors(self) -> t.List[Certificate]:
        if self._store is None:
            try:
                ders = self.context.get_ca_certs(binary_form=True)
            except (ssl.SSLError, ValueError):
                ders = []
            self._store = _parse_all(t.cast(t.List[bytes], ders))
        return self._store

    def shipped(self, cert: Certificate) -> bool:
        """Also shipped by the distribution (an admin re-adding a public root changes nothing)."""
        if self._shipped is None:
            self._shipped = set()
            for top in SHIPPED_DIRS:
                if os.path.isdir(top):
                    for path in _files_under(top):
                        self._shipped.update(c.sha256 for c in _parse_all(_read_certs(path)))
        return cert.sha256 in self._shipped

    def anchor_for(self, top: Certificate) -> t.Optional[Anchor]:
        """The anchor the chain's last certificate ends in: itself when self-issued, else its issuer."""
        with self._lock:
            return self._anchor_for(top)

    def _anchor_for(self, top: Certificate) -> t.Optional[Anchor]:
        def matches(candidate: Certificate) -> bool:
            if top.self_issued():
                return candidate.spki_der == top.spki_der and candidate.subject_der == top.subject_der
            return _issues(candidate, top)

        if self.system_store:
            for cert, path in self.local_anchors():
                if matches(cert) and not self.shipped(cert):
                    return Anchor(cert, path, True)
        for cert in self.store_anchors():
            if matches(cert):
                return Anchor(cert, "the trust store", False)
        return Anchor(top, "the chain", False) if top.self_issued() else None


# ---- the verdict ------------------------------------------------------------------------------

class TrustFinding(t.NamedTuple):
    intercepted: bool
    message: str            # why it is intercepted; empty when not
    anchor: t.Optional[str]      # the anchor's name, for the result


def assess(store: TrustStore, leaf: Certificate, intermediates: t.List[bytes], expected: t.Optional[IssuerSpec],
           names: t.Sequence[InspectionName], server_name: str) -> TrustFinding:
    """What a verified chain says about who answers; see the module comment for the three tests."""
    sent = _parse_all(intermediates)
    chain = chain_from(leaf, sent)
    anchor = store.anchor_for(chain[-1] if chain else leaf)
    cas = chain + ([anchor.cert] if anchor and anchor.cert not in chain else [])
    anchor_name = format_name(anchor.cert.subject) if anchor else None
    issuer = format_name(leaf.issuer)
    if expected is not None:
        if not issuer_spec_matches(expected, leaf, cas):
            return TrustFinding(True, f"the certificate for {server_name} was issued by {issuer} (trust anchor "
                                f"{anchor_name or 'not found'}), not by {expected.text!r}", anchor_name)
    hit = inspection_match(names, leaf, cas)
    if hit:
        entry, shown = hit
        return TrustFinding(True, f"the certificate for {server_name} comes from {shown}, the name of "
                            f"{entry.product} (source: {entry.source})", anchor_name)
    if expected is None and anchor is not None and anchor.local:
        return TrustFinding(True, f"the certificate for {server_name} (issued by {issuer}) ends in the trust "
                            f"anchor {anchor_name}, which was added on this host ({anchor.where}), not shipped "
                            "by the distribution", anchor_name)
    return TrustFinding(False, "", anchor_name)
