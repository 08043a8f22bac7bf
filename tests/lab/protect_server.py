#!/usr/bin/env python3
"""A TLS stand-in for the ESET PROTECT server's agent port (2222) on pn-server: the handshake with a certificate from
the lab's "ESET PROTECT Certification Authority", then it reads and discards until the client goes. It speaks no
agent protocol (the probe checks TCP and TLS only). Bounded like the hostile peers (64 connections, 300 s each).
"""
from __future__ import annotations

import argparse
import asyncio
import ssl

from hostile import CHUNK, bounded, silent_after_tls


async def serve(addresses: list[str], port: int, cert: str, key: str) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    servers = [await asyncio.start_server(bounded(silent_after_tls), address, port, ssl=context,
                                          ssl_handshake_timeout=10, limit=CHUNK * 4, backlog=16)
               for address in addresses]
    print("ESET PROTECT server stand-in listening", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", action="append", required=True)
    parser.add_argument("--port", type=int, default=2222)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.address, args.port, args.cert, args.key))


if __name__ == "__main__":
    main()
