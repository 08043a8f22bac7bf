"""The lab's certificate authorities, certificates and SSH keys, made fresh for every build."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .proc import run
from .topology import EPNS_NAME, ESET_SERVER_NAME, server_host

DAYS = "30"
# P-256 keeps the whole build under a second; RSA would cost seconds.
EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]


@dataclass(frozen=True)
class Pki:
    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def eset_server_ca(self) -> Path:
        """The ESET PROTECT server's own CA (as ESET PROTECT creates one at install), apart from the lab CA."""
        return self.cert(ESET_SERVER_CA)

    @property
    def intercept_ca(self) -> Path:
        return self.dir / "intercept-ca.crt"

    def interceptor_ca(self, which: str) -> Path:
        """The CA of an interception endpoint: "intercept", "corp" or "forti" (INTERCEPTORS)."""
        return self.cert(INTERCEPTORS[which][0])

    def cert(self, name: str) -> Path:
        return self.dir / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.dir / f"{name}.key"

    @property
    def ssh_key(self) -> Path:
        return self.dir.parent / "ssh" / "id_ed25519"


# Interception endpoints: fault option `ca` -> (CA file name, CA subject, leaf file name). "corp" is the usual case,
# an internal CA; "forti" carries the subject of a FortiGate's default SSL inspection CA, as Fortinet documents it.
INTERCEPTORS = {
    "intercept": ("intercept-ca", "/O=PN Lab/CN=Intercept CA", "intercept"),
    "corp": ("corp-ca", "/O=Example Corp/CN=Example Corp Internal Issuing CA", "corp"),
    "forti": ("forti-ca", "/C=US/ST=California/L=Sunnyvale/O=Fortinet/OU=Certificate Authority/CN=FortiGate CA",
              "forti"),
}


def _make_ca(pki: Pki, name: str, subject: str) -> None:
    run(["openssl", "req", "-x509", *EC, "-keyout", str(pki.key(name)), "-out", str(pki.cert(name)),
         "-days", DAYS, "-subj", subject,
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"])


def _issue(pki: Pki, ca: str, name: str, cn: str, extensions: str) -> None:
    ext = pki.dir / f"{name}.ext"
    ext.write_text(extensions)
    csr = pki.dir / f"{name}.csr"
    run(["openssl", "req", "-new", *EC, "-keyout", str(pki.key(name)), "-out", str(csr), "-subj", f"/CN={cn}"])
    run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(pki.cert(ca)), "-CAkey", str(pki.key(ca)),
         "-CAcreateserial", "-days", DAYS, "-extfile", str(ext), "-out", str(pki.cert(name))])
    csr.unlink()
    ext.unlink()


SERVER_EXT = (f"subjectAltName=DNS:{EPNS_NAME}\nbasicConstraints=CA:FALSE\n"
              "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
# The stand-in's certificate: for the name and the addresses agents may have been installed with.
ESET_SERVER_CA = "eset-server-ca"
ESET_SERVER_CA_SUBJECT = "/O=PN Lab/CN=ESET PROTECT Certification Authority"
ESET_SERVER_EXT = ("subjectAltName=DNS:{},{}\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n").format(
    ESET_SERVER_NAME, ",".join(f"IP:{a}" for a in (*server_host().v4, *server_host().v6)))
CLIENT_EXT = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"


def make_pki(pki: Pki) -> None:
    pki.dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    with ThreadPoolExecutor(2) as pool:
        cas = [("ca", "/O=PN Lab/CN=PN Lab Root CA"), (ESET_SERVER_CA, ESET_SERVER_CA_SUBJECT),
               *((ca, subject) for ca, subject, _ in INTERCEPTORS.values())]
        for future in [pool.submit(_make_ca, pki, name, subject) for name, subject in cas]:
            future.result()
        jobs = [pool.submit(_issue, pki, "ca", "broker", EPNS_NAME, SERVER_EXT),
                *(pool.submit(_issue, pki, ca, leaf, EPNS_NAME, SERVER_EXT) for ca, _, leaf in INTERCEPTORS.values()),
                pool.submit(_issue, pki, "ca", "client", "pnlab-agent", CLIENT_EXT),
                pool.submit(_issue, pki, ESET_SERVER_CA, "eset-server", ESET_SERVER_NAME, ESET_SERVER_EXT)]
        for future in jobs:
            future.result()
    for key in pki.dir.glob("*.key"):
        key.chmod(0o644)  # the lab's keys are test material; agents and the broker user read them


def make_ssh_key(path: Path, comment: str) -> str:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    return Path(f"{path}.pub").read_text().strip()


def subject_hash(cert: Path) -> str:
    return run(["openssl", "x509", "-noout", "-subject_hash", "-in", str(cert)]).stdout.strip()
