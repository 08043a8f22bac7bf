"""Loopback peers for the epns_probe tests: a test PKI, TLS/MQTT servers and an HTTP CONNECT proxy.

Everything listens on 127.0.0.1 with a kernel-chosen port and runs in daemon threads; nothing
resolves or contacts a real name. conftest.py registers the fixtures (pki, servers, lo).
"""
from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import typing as t
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVER_NAME = "epns.eset.com"


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@dataclass
class Pki:
    root: Path
    ca: Path            # trusted test CA (PEM)
    server_cert: Path   # epns.eset.com, issued by the test CA
    server_key: Path
    rogue_ca: Path      # an "inspection" CA the probe does not trust
    rogue_cert: Path    # epns.eset.com, issued by the rogue CA
    rogue_key: Path
    client_cert: Path   # issued by the test CA
    client_key: Path

    def issue(self, name: str, subject: str, issuer: str, san: t.Optional[str]) -> t.Tuple[Path, Path]:
        """A leaf for subject signed by issuer ('ca' or 'rogue'); returns (cert, key)."""
        key, csr, crt = (self.root / f"{name}.{ext}" for ext in ("key", "csr", "pem"))
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-utf8", "-keyout", str(key), "-out", str(csr), "-subj", subject, cwd=self.root)
        ext = self.root / f"{name}.ext"
        ext.write_text(f"subjectAltName={san}\n" if san else "basicConstraints=CA:FALSE\n")
        openssl("x509", "-req", "-in", str(csr), "-CA", f"{issuer}.pem", "-CAkey", f"{issuer}.key",
                "-CAcreateserial", "-days", "30", "-extfile", str(ext), "-out", str(crt), cwd=self.root)
        return crt, key


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    root = tmp_path_factory.mktemp("pki")
    for name, subject in (("ca", "/O=protectnet test/CN=Test EPNS CA"),
                          ("rogue", "/O=Middlebox Inc/CN=Corp Inspection CA")):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "30", "-subj", subject,
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=root)
    pki = Pki(root, root / "ca.pem", root / "x", root / "x", root / "rogue.pem", root / "x", root / "x",
              root / "x", root / "x")
    pki.server_cert, pki.server_key = pki.issue(
        "server", f"/CN={SERVER_NAME}", "ca", f"DNS:{SERVER_NAME},IP:127.0.0.1")
    pki.rogue_cert, pki.rogue_key = pki.issue(
        "intercepted", f"/CN={SERVER_NAME}", "rogue", f"DNS:{SERVER_NAME}")
    pki.client_cert, pki.client_key = pki.issue("client", "/CN=agent-1", "ca", None)
    return pki


# --------------------------------------------------------------------------- servers

Handler = t.Callable[[socket.socket], None]


class LoopbackServer:
    """Accepts on 127.0.0.1, runs handler(conn) per connection in a thread (TLS-wrapped if ctx)."""

    def __init__(self, handler: Handler, ctx: t.Optional[ssl.SSLContext] = None) -> None:
        self.handler = handler
        self.ctx = ctx
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stopped = threading.Event()
        self.conns: t.List[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            if self.ctx is not None:
                conn = self.ctx.wrap_socket(conn, server_side=True)
                self.conns.append(conn)
            self.handler(conn)
        except Exception:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def close(self) -> None:
        self.stopped.set()
        self.sock.close()
        for conn in self.conns:
            try:
                conn.close()
            except OSError:
                pass


def recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def read_mqtt_packet(conn: socket.socket) -> t.Tuple[int, bytes]:
    first = recv_exact(conn, 1)[0]
    length, shift = 0, 0
    while True:
        byte = recv_exact(conn, 1)[0]
        length += (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return first >> 4, recv_exact(conn, length)


def mqtt_broker(return_code: int = 0, close_on_ping: bool = False, connack: t.Optional[bytes] = None,
                received: t.Optional[t.List[bytes]] = None) -> Handler:
    """A tiny MQTT 3.1.1 broker: CONNACK, then PINGRESP to every PINGREQ; or the given bytes, then close."""

    def handle(conn: socket.socket) -> None:
        ptype, body = read_mqtt_packet(conn)
        if received is not None:
            received.append(body)
        assert ptype == 1
        if connack is not None:
            conn.sendall(connack)
            time.sleep(0.1)
            return
        conn.sendall(bytes((0x20, 2, 0, return_code)))
        while True:
            ptype, _ = read_mqtt_packet(conn)
            if ptype == 12:
                if close_on_ping:
                    return
                conn.sendall(b"\xd0\x00")
            elif ptype == 14:
                return

    return handle


def silent(conn: socket.socket) -> None:
    """Read whatever comes and never answer, until the peer goes."""
    conn.settimeout(30)
    while conn.recv(4096):
        pass


def tls_server_context(cert: Path, key: Path, require_client_ca: t.Optional[Path] = None,
                       max_tls12: bool = False, request_client_cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    if request_client_cert:
        # asks for a certificate (CertificateRequest) but accepts a session without one
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(str(cert))
    if require_client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(str(require_client_ca))
    if max_tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class FakeProxy(LoopbackServer):
    """An HTTP CONNECT proxy; behaviour 'ok' relays to 127.0.0.1:<requested port>."""

    def __init__(self, behaviour: str = "ok") -> None:
        self.behaviour = behaviour
        self.requests: t.List[bytes] = []
        super().__init__(self._handle)

    def _handle(self, conn: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                return
            head += chunk
        self.requests.append(head)
        b = self.behaviour
        if b == "slowloris":
            for byte in b"HTTP/1.1 200 Connection established\r\n\r\n":
                conn.sendall(bytes((byte,)))
                time.sleep(0.3)
            return
        if b == "garbage":
            conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
            silent(conn)
            return
        if b == "silent":
            silent(conn)
            return
        if b == "huge":
            conn.sendall(b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 40000)
            silent(conn)
            return
        if b in ("403", "407", "502"):
            reason = {"403": "Forbidden", "407": "Proxy Authentication Required", "502": "Bad Gateway"}[b]
            conn.sendall(f"HTTP/1.1 {b} {reason}\r\nContent-Length: 0\r\n\r\n".encode())
            return
        port = int(head.split(b" ", 2)[1].rsplit(b":", 1)[1])
        upstream = socket.create_connection(("127.0.0.1", port), timeout=5)
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        relay(conn, upstream)


def relay(a: socket.socket, b: socket.socket) -> None:
    def pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    th = threading.Thread(target=pump, args=(b, a), daemon=True)
    th.start()
    pump(a, b)
    th.join(5)


@pytest.fixture
def servers() -> t.Iterator[t.List[LoopbackServer]]:
    """Collects servers a test starts and closes them afterwards."""
    started: t.List[LoopbackServer] = []
    yield started
    for server in started:
        server.close()


def free_port() -> int:
    """A loopback port with nothing listening (bound then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="session")
def lo() -> t.Any:
    """This module's peers and helpers, for the tests that take the fixture instead of importing the module."""
    return sys.modules[__name__]
