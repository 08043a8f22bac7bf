"""A throwaway CA and a server certificate for the emulator, made with `openssl` (EC P-256: fast).

The server certificate names 127.0.0.1, ::1, localhost, any extra names given, and the ESET Connect host
patterns, so a client that routes cloud calls by host name (e.g. via /etc/hosts in the lab) verifies too.
"""
from __future__ import annotations

import ipaddress
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

DAYS = "7"
EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
CLOUD_NAMES = ("*.policy-management.eset.systems", "*.device-management.eset.systems",
               "*.business-account.iam.eset.systems")


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path


def _run(args: Sequence[str]) -> None:
    subprocess.run(list(args), check=True, capture_output=True)


def make_pki(directory: Path, names: Sequence[str] = ()) -> Pki:
    """Write ca.crt, server.crt and server.key into `directory` and return their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(directory / "ca.crt", directory / "server.crt", directory / "server.key")
    ca_key = directory / "ca.key"
    _run(["openssl", "req", "-x509", *EC, "-keyout", str(ca_key), "-out", str(pki.ca), "-days", DAYS,
          "-subj", "/O=protectnet emulator/CN=Emulator Test CA",
          "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    dns = ["localhost", *CLOUD_NAMES, *[n for n in names if not _is_ip(n)]]
    ips = ["127.0.0.1", "::1", *[n for n in names if _is_ip(n)]]
    san = ",".join([f"DNS:{n}" for n in dns] + [f"IP:{n}" for n in ips])
    ext = directory / "server.ext"
    ext.write_text(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                   "extendedKeyUsage=serverAuth\n")
    csr = directory / "server.csr"
    _run(["openssl", "req", "-new", *EC, "-keyout", str(pki.key), "-out", str(csr), "-subj", "/CN=localhost"])
    _run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(pki.ca), "-CAkey", str(ca_key),
          "-CAcreateserial", "-days", DAYS, "-extfile", str(ext), "-out", str(pki.cert)])
    csr.unlink()
    ext.unlink()
    return pki


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
