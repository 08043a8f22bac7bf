"""A stand-in for the ESET PROTECT server's PKI and agent port, on the probe's loopback test PKI (_loopback).

conftest.py registers the fixtures (spki, agent_port).
"""
from __future__ import annotations

import typing as t
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class ServerPki:
    ca: Path                         # "ESET PROTECT Certification Authority"
    named: t.Tuple[Path, Path]       # for protect.lab and 127.0.0.1
    any_host: t.Tuple[Path, Path]    # for host "*", as ESET PROTECT creates it by default
    other_name: t.Tuple[Path, Path]  # for protect.lab only


@pytest.fixture(scope="session")
def spki(pki: t.Any, lo: t.Any) -> ServerPki:
    lo.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
               "-keyout", "esetca.key", "-out", "esetca.pem", "-days", "30",
               "-subj", "/O=protectnet test/CN=ESET PROTECT Certification Authority",
               "-addext", "basicConstraints=critical,CA:TRUE",
               "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=pki.root)
    return ServerPki(pki.root / "esetca.pem",
                     pki.issue("protect", "/CN=protect.lab", "esetca", "DNS:protect.lab,IP:127.0.0.1"),
                     pki.issue("protect-any", "/CN=*", "esetca", "DNS:*"),
                     pki.issue("protect-other", "/CN=protect.lab", "esetca", "DNS:protect.lab"))


@pytest.fixture
def agent_port(lo: t.Any, servers: list) -> t.Callable[..., t.Any]:
    """A TLS stand-in for the server's agent port: the handshake, then it waits for the peer to go."""
    def start(cert: t.Tuple[Path, Path], **ctx_kwargs: t.Any) -> t.Any:
        server = lo.LoopbackServer(lo.silent, lo.tls_server_context(*cert, **ctx_kwargs))
        servers.append(server)
        return server

    return start
