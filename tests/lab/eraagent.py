#!/usr/bin/env python3
"""A stand-in for the ESET Management Agent in the lab: a process whose name (comm) is ERAAgent, holding what the
real agent would hold toward EPNS: a TLS + MQTT session with the broker on 8883 or 443, directly or through an HTTP
proxy (CONNECT), or nothing at all. Standard library only.

    eraagent.py --connect epns.eset.com:8883 --ca /run/pnlab/pki/ca.crt
    eraagent.py --connect epns.eset.com:443 --proxy proxy.lab:3128 --ca ...
    eraagent.py                       # runs, holds no connection
    eraagent.py --connect 127.0.0.1:8883 --tcp-only --name ERAt1234   # unit tests: TCP only, a name of their own

It prints one line "ready LOCAL -> REMOTE" (or "ready idle") once the session stands, then pings every
--keepalive/2 seconds until killed. Any failure before that prints "failed: ..." and exits 1."""
from __future__ import annotations

import argparse
import ctypes
import os
import socket
import ssl
import sys
import time

PR_SET_NAME = 15
NAME = b"ERAAgent"
PINGREQ = b"\xc0\x00"


def set_name(name: bytes) -> None:
    """comm is what ps, /proc/PID/comm and the module see; argv[0] stays python's."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME)")


def endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def mqtt_connect(client_id: str, keepalive: int) -> bytes:
    ident = client_id.encode()
    variable = b"\x00\x04MQTT\x04\x02" + keepalive.to_bytes(2, "big")
    body = variable + len(ident).to_bytes(2, "big") + ident
    return b"\x10" + bytes([len(body)]) + body


def tunnel(proxy: tuple[str, int], target: tuple[str, int], timeout: float) -> socket.socket:
    sock = socket.create_connection(proxy, timeout=timeout)
    host = f"[{target[0]}]" if ":" in target[0] else target[0]
    sock.sendall(f"CONNECT {host}:{target[1]} HTTP/1.1\r\nHost: {host}:{target[1]}\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            raise OSError("proxy closed the connection before answering CONNECT")
        answer += chunk
    status = answer.split(b"\r\n", 1)[0].decode(errors="replace")
    if status.split()[1:2] != ["200"]:
        raise OSError(f"proxy refused CONNECT: {status}")
    return sock


def session(args: argparse.Namespace) -> socket.socket:
    target = endpoint(args.connect)
    raw = tunnel(endpoint(args.proxy), target, args.timeout) if args.proxy else \
        socket.create_connection(target, timeout=args.timeout)
    if args.tcp_only:
        return raw
    context = ssl.create_default_context(cafile=args.ca)
    tls = context.wrap_socket(raw, server_hostname=args.server_name or target[0])
    tls.sendall(mqtt_connect(f"pnlab-eraagent-{os.getpid()}", args.keepalive))
    connack = tls.recv(4)
    if len(connack) < 4 or connack[0] != 0x20 or connack[3] != 0:
        raise OSError(f"broker did not accept the session: CONNACK {connack.hex()}")
    tls.settimeout(None)
    return tls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connect", help="HOST:PORT of the broker; without it the stand-in holds nothing")
    parser.add_argument("--proxy", help="HOST:PORT of an HTTP proxy to CONNECT through")
    parser.add_argument("--ca", help="CA file the broker's certificate is verified against")
    parser.add_argument("--server-name", help="TLS server name (default: the --connect host)")
    parser.add_argument("--tcp-only", action="store_true", help="hold the TCP connection without TLS or MQTT")
    parser.add_argument("--name", default=NAME.decode(), help="the process name (comm), at most 15 bytes")
    parser.add_argument("--keepalive", type=int, default=60)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    set_name(args.name.encode())
    try:
        held = session(args) if args.connect else None
    except (OSError, ssl.SSLError, ValueError) as exc:
        print(f"failed: {exc}", flush=True)
        return 1
    if held is None:
        print("ready idle", flush=True)
    else:
        print(f"ready {held.getsockname()[0]}:{held.getsockname()[1]} -> {held.getpeername()[0]}:"
              f"{held.getpeername()[1]}", flush=True)
    while True:
        time.sleep(max(1, args.keepalive // 2))
        if held is not None and not args.tcp_only:
            held.sendall(PINGREQ)
            held.recv(2)


if __name__ == "__main__":
    sys.exit(main())
