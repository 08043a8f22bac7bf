#!/usr/bin/env python3
"""Hostile peers for the lab: each port misbehaves in exactly one way, bounded in time, count and memory.

Ports: 8883 TLS then garbage; 443 TLS then silence; 9000 plain non-TLS bytes;
3130 an HTTP proxy that trickles its status line forever; 3131 a "proxy" that answers non-HTTP bytes.
With the genuine broker certificate and a request for a client certificate (none needed), none of which proves
a refusal by the genuine server: 8884 TLS 1.3, then a TCP reset after the first bytes; 8885 TLS 1.3, then a FIN
without any TLS alert; 8886 TLS 1.2 only, refusing a client without a certificate with an alert in clear.
"""
from __future__ import annotations

import argparse
import asyncio
import socket
import ssl
import struct
import threading
from typing import Awaitable, Callable

MAX_CONNECTIONS = 64  # beyond this a new connection is closed at once: a runaway client cannot grow us
HOLD_SECONDS = 300.0  # "forever" for a test, yet every connection ends by itself
CHUNK = 4096
# 0x00 is a reserved MQTT packet type and no TLS record type, so no parser can mistake it for a reply.
GARBAGE = b"\x00\xffpnlab-garbage-not-mqtt\r\n" * 4
NOT_TLS = b"\x00pnlab: this port does not speak TLS\r\n"
NOT_HTTP = b"\x16\x03\x00\xffpnlab: not an HTTP proxy\x00\r\n\r\n"
SLOW_STATUS = b"HTTP/1.1 200 "

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
slots = asyncio.Semaphore(MAX_CONNECTIONS)


async def discard_until_closed(reader: asyncio.StreamReader, seconds: float) -> None:
    async def loop() -> None:
        while await reader.read(CHUNK):
            pass
    try:
        await asyncio.wait_for(loop(), seconds)
    except (asyncio.TimeoutError, OSError):
        pass


async def first_bytes(reader: asyncio.StreamReader, seconds: float) -> bytes:
    try:
        return await asyncio.wait_for(reader.read(CHUNK), seconds)
    except (asyncio.TimeoutError, OSError):
        return b""


async def read_request_head(reader: asyncio.StreamReader) -> None:
    try:
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
        pass


async def garbage_after_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await first_bytes(reader, 5)
    writer.write(GARBAGE)
    await writer.drain()
    await discard_until_closed(reader, 30)


async def silent_after_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await discard_until_closed(reader, HOLD_SECONDS)


async def not_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await first_bytes(reader, 5)
    writer.write(NOT_TLS)
    await writer.drain()


async def cert_then_reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await first_bytes(reader, 5)
    # linger 0: close() sends a RST at once, and no TLS alert goes before it
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def cert_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await first_bytes(reader, 5)
    writer.transport.abort()  # a FIN without close_notify or any other alert


async def slow_proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request_head(reader)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HOLD_SECONDS
    sent = 0
    while loop.time() < deadline and not reader.at_eof():
        writer.write(SLOW_STATUS[sent:sent + 1] if sent < len(SLOW_STATUS) else b"x")
        await writer.drain()
        sent += 1
        await asyncio.sleep(1)


async def garbage_proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request_head(reader)
    writer.write(NOT_HTTP)
    await writer.drain()


def bounded(handler: Handler) -> Handler:
    async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if slots.locked():
            writer.close()
            return
        async with slots:
            try:
                await asyncio.wait_for(handler(reader, writer), HOLD_SECONDS + 10)
            except (asyncio.TimeoutError, OSError, ssl.SSLError):
                pass
            finally:
                writer.close()
    return wrapped


def refuse_without_certificate(address: str, port: int, context: ssl.SSLContext) -> None:
    """TLS 1.2, a client certificate required: the handshake fails with OpenSSL's alert. Blocking sockets, because
    asyncio's TLS closes a failed handshake without sending the alert."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, port))
    listener.listen(16)
    threads = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def handshake(conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(CHUNK)  # not reached by a client without a certificate
        except OSError:
            pass
        finally:
            conn.close()
            threads.release()

    while True:
        conn, _ = listener.accept()
        if not threads.acquire(blocking=False):
            conn.close()
            continue
        threading.Thread(target=handshake, args=(conn,), daemon=True).start()


def contexts(cert: str, key: str, client_ca: str) -> dict[str, ssl.SSLContext]:
    plain = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    plain.load_cert_chain(cert, key)
    asks = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    asks.load_cert_chain(cert, key)
    asks.load_verify_locations(client_ca)
    asks.verify_mode = ssl.CERT_OPTIONAL  # a CertificateRequest, but a session without a certificate goes on
    asks.minimum_version = ssl.TLSVersion.TLSv1_3
    tls12 = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls12.load_cert_chain(cert, key)
    tls12.load_verify_locations(client_ca)
    tls12.verify_mode = ssl.CERT_REQUIRED
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    return {"plain": plain, "asks": asks, "tls12": tls12}


async def serve(addresses: list[str], cert: str, key: str, client_ca: str) -> None:
    tls = contexts(cert, key, client_ca)
    plan: list[tuple[int, Handler, ssl.SSLContext | None]] = [
        (8883, garbage_after_tls, tls["plain"]), (443, silent_after_tls, tls["plain"]), (9000, not_tls, None),
        (8884, cert_then_reset, tls["asks"]), (8885, cert_then_close, tls["asks"]),
        (3130, slow_proxy, None), (3131, garbage_proxy, None)]
    for address in addresses:
        threading.Thread(target=refuse_without_certificate, args=(address, 8886, tls["tls12"]), daemon=True).start()
    servers = []
    for port, handler, context in plan:
        for address in addresses:
            servers.append(await asyncio.start_server(bounded(handler), address, port, ssl=context,
                                                      ssl_handshake_timeout=10 if context else None,
                                                      limit=CHUNK * 4, backlog=16))
    print("hostile peers listening", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", action="append", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--client-ca", required=True, help="the CA named in the request for a client certificate")
    args = parser.parse_args()
    asyncio.run(serve(args.address, args.cert, args.key, args.client_ca))


if __name__ == "__main__":
    main()
