"""Run the emulator until SIGTERM/SIGINT: python3 tests/emulator/run.py --deployment cloud --listen 127.0.0.1:0

Prints one line, `URL <url>`, once it listens (and `CA <path>` first if it made its own certificate), so a
parent process can read where it is.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # makes `emulator` importable as a package

from emulator import Emulator
from emulator.control import apply_fleet


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="ESET PROTECT REST API emulator")
    parser.add_argument("--deployment", choices=["onprem", "cloud"], default="onprem")
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (port 0 = any free port)")
    parser.add_argument("--cert", help="server certificate (PEM); omitted: a throwaway CA is made")
    parser.add_argument("--key", help="server key (PEM)")
    parser.add_argument("--state-file", help="keep state in this JSON file across restarts")
    parser.add_argument("--config-write-path", help="serve a configuration write call at this path")
    parser.add_argument("--token-lifetime", type=float, default=3600, help="seconds")
    parser.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD",
                        help="API user (repeatable); replaces the default users")
    parser.add_argument("--rate-limit", type=float, help="calls per second per token, then 429")
    parser.add_argument("--int64-as-string", action="store_true", help="send int64 fields as JSON strings")
    parser.add_argument("--emit-unpopulated", action="store_true", help="send zero-valued fields too")
    parser.add_argument("--onprem-version", default="13.1")
    parser.add_argument("--fleet", type=int, metavar="N",
                        help="replace the seed's groups and devices by a generated fleet of N devices (fleet.py)")
    parser.add_argument("--fleet-seed", type=int, default=0, metavar="S", help="the fleet's seed (default 0)")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    users = dict(u.split(":", 1) for u in args.user) if args.user else None
    emulator = Emulator(args.deployment, host.strip("[]") or "127.0.0.1", int(port), args.cert, args.key, users,
                        args.token_lifetime, args.config_write_path, args.state_file, args.rate_limit,
                        args.int64_as_string, args.emit_unpopulated, args.onprem_version)
    if args.fleet is not None:
        try:
            apply_fleet(emulator, {"devices": args.fleet, "seed": args.fleet_seed})
        except ValueError as exc:
            print(f"--fleet: {exc}", file=sys.stderr)
            return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with emulator:
        if emulator.ca_path:
            print(f"CA {emulator.ca_path}", flush=True)
        print(f"URL {emulator.url}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
