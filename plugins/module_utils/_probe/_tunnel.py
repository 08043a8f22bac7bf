# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The probe's first stages: the TCP connection to EPNS or to the proxy, and the HTTP CONNECT
# tunnel through the proxy. Standard library only; managed hosts run Python 3.8+.
from __future__ import annotations

import re
import socket
import time
import typing as t
from dataclasses import dataclass

from .. import _epns
from ._attempt import AttemptLog, StageClock
from ._classify import (
    StageFailure,
    classify_connect_error,
    deadline_failure,
    printable,
    proxy_refusal_message,
)
from ._options import ProxySpec

MAX_PROXY_HEADER = 16 * 1024
_USER_AGENT = "protectnet-epns-probe"
_STATUS_RE = re.compile(r"^HTTP/1\.[01] ([0-9]{3})(?: .*)?$")


def authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass
class Route:
    """Where one attempt goes: an address from getaddrinfo (of EPNS, or of the proxy when there is
    one) and the EPNS host and port the proxy is asked to CONNECT to."""

    family: int
    sockaddr: t.Any
    host: str
    port: int
    proxy: t.Optional[ProxySpec]

    @property
    def first_hop_port(self) -> int:
        return self.proxy.port if self.proxy else self.port

    @property
    def first_hop(self) -> t.Tuple[t.Any, ...]:
        # IPv6 sockaddrs carry flowinfo and scope id after the port; keep them.
        return (self.sockaddr[0], self.first_hop_port, *self.sockaddr[2:])

    @property
    def connect_target(self) -> str:
        return authority(self.host, self.port)

    def connect_request(self) -> bytes:
        target = self.connect_target
        return f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: {_USER_AGENT}\r\n\r\n".encode("ascii")


def tcp_stage(att: AttemptLog, clock: StageClock, route: Route) -> socket.socket:
    att.begin("tcp")
    shown = authority(route.sockaddr[0], route.first_hop_port)
    deadline, bound = clock.stage_deadline()
    sock = socket.socket(route.family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(clock.remaining(deadline))
        sock.connect(route.first_hop)
    except OSError as exc:
        sock.close()
        cls, message = classify_connect_error(exc, shown, route.proxy is not None, bound,
                                              clock.stage_seconds)
        raise StageFailure(cls, message, str(exc) or exc.__class__.__name__) from None
    try:
        local = sock.getsockname()
        detail = {"peer": shown, "local": authority(local[0], local[1])}
    except OSError:
        detail = {"peer": shown}
    att.stage_ok(detail)
    return sock


def proxy_connect_stage(att: AttemptLog, clock: StageClock, route: Route, sock: socket.socket) -> None:
    att.begin("proxy_connect")
    deadline, bound = clock.stage_deadline()
    target = route.connect_target
    try:
        sock.settimeout(clock.remaining(deadline))
        sock.sendall(route.connect_request())
        status, extra = read_http_head(sock, deadline)
    except StageFailure as exc:
        if exc.cls == _epns.PROXY_BAD_RESPONSE and exc.raw_error == "timeout" and bound:
            raise deadline_failure(f"the wait for the proxy's answer to CONNECT {target}", "deadline") from None
        raise
    except OSError as exc:
        raise StageFailure(_epns.PROXY_BAD_RESPONSE,
                           f"the proxy connection failed during CONNECT {target}: {exc}",
                           str(exc)) from None
    att.proxy_status = status
    code = int(status.split()[1])
    if not 200 <= code < 300:
        raise StageFailure(_epns.PROXY_REFUSED, proxy_refusal_message(code, status, target), status)
    if extra:
        raise StageFailure(_epns.PROXY_BAD_RESPONSE,
                           f"the proxy sent {len(extra)} bytes after its {status} header, before any TLS",
                           printable(extra, 60))
    att.stage_ok({"status": status, "http_status": code})


def open_tunnel_quietly(route: Route, deadline: float) -> socket.socket:
    """A new connection along route, through the proxy's tunnel if any, with no stage records and
    no judgement of the answer: for a second look at what the far end shows.

    Raises OSError or StageFailure; the caller owns the socket only when this returns.
    """
    sock = socket.socket(route.family, socket.SOCK_STREAM)
    try:
        sock.settimeout(StageClock.remaining(deadline))
        sock.connect(route.first_hop)
        if route.proxy is not None:
            sock.sendall(route.connect_request())
            read_http_head(sock, deadline)
    except BaseException:
        sock.close()
        raise
    return sock


def _no_head_in_time(received: int) -> StageFailure:
    return StageFailure(_epns.PROXY_BAD_RESPONSE,
                        f"no complete response head from the proxy in time ({received} bytes received)", "timeout")


def read_http_head(sock: socket.socket, deadline: float) -> t.Tuple[str, bytes]:
    """Read an HTTP response head: (status line, bytes after the head).

    Bounded in time (deadline) and size (MAX_PROXY_HEADER), and gives up as soon as the bytes
    cannot be HTTP, so a hostile or confused proxy cannot hold the probe.
    """
    buf = b""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            break
        start = buf[:5]
        if start != b"HTTP/"[:len(start)]:
            raise StageFailure(_epns.PROXY_BAD_RESPONSE, f"the proxy's answer is not HTTP: {printable(buf[:40])!r}",
                               printable(buf[:60]))
        if len(buf) > MAX_PROXY_HEADER:
            raise StageFailure(_epns.PROXY_BAD_RESPONSE,
                               f"the proxy's response head exceeds {MAX_PROXY_HEADER} bytes", "header too large")
        left = deadline - time.monotonic()
        if left <= 0:
            raise _no_head_in_time(len(buf))
        sock.settimeout(left)
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            raise _no_head_in_time(len(buf)) from None
        if not chunk:
            raise StageFailure(_epns.PROXY_BAD_RESPONSE, "the proxy closed the connection %s" % (
                f"after {len(buf)} bytes without a complete response head" if buf
                else "without answering"), "EOF")
        buf += chunk
    head, extra = buf[:end], buf[end + 4:]
    status = head.split(b"\r\n", 1)[0].decode("latin-1")
    if not _STATUS_RE.match(status):
        shown = printable(status.encode("latin-1"))
        raise StageFailure(_epns.PROXY_BAD_RESPONSE, f"the proxy's status line is not HTTP/1.x: {shown!r}",
                           printable(head[:60]))
    return printable(status.encode("latin-1")), extra
