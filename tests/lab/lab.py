#!/usr/bin/env python3
"""Command line for the protectnet.epns namespace lab. Run as root; see tests/lab/README.md."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pnlab import Lab, LabError
from pnlab.core import require_root
from pnlab.faults import BLOCK_ACTIONS, BLOCK_FAMILIES, BLOCK_TARGETS, KINDS
from pnlab.services import SERVICES
from pnlab.topology import DNS_FAULT_MODES, HOSTILE_PORTS


def say(line: str) -> None:
    print(f"pnlab: {line}", file=sys.stderr, flush=True)


def fault_parser(sub: argparse._SubParsersAction) -> None:
    fault = sub.add_parser("fault", help="switch a fault on for one agent")
    fault.add_argument("agent")
    kinds = fault.add_subparsers(dest="kind", required=True)
    block = kinds.add_parser("block", help="drop or reject the agent's TCP to a port")
    block.add_argument("--port", type=int, required=True)
    block.add_argument("--to", choices=BLOCK_TARGETS, default="any")
    block.add_argument("--action", choices=tuple(BLOCK_ACTIONS), default="drop")
    block.add_argument("--family", choices=BLOCK_FAMILIES, default="any")
    kinds.add_parser("broker-down", help="the agent's traffic to the broker gets a TCP reset")
    dns = kinds.add_parser("dns", help="the agent's DNS queries go to a resolver that misbehaves in MODE")
    dns.add_argument("mode", choices=DNS_FAULT_MODES)
    dns.add_argument("--seconds", type=float, default=None, help="slow: the delay before the answer (default 2)")
    idle = kinds.add_parser("idle-cut", help="a middlebox forgets connections idle for SECONDS")
    idle.add_argument("seconds", type=int)
    idle.add_argument("--reset", action="store_true", help="answer the next packet with a reset instead of silence")
    intercept = kinds.add_parser("intercept", help="TLS interception: epns traffic goes to a box with another CA")
    intercept.add_argument("--trusted", action="store_true",
                           help="the agent trusts the interceptor's CA as a locally added anchor")
    intercept.add_argument("--ca", choices=("intercept", "corp", "forti"), default="intercept",
                           help="whose CA: the Intercept CA, an internal corporate CA, a FortiGate-named CA")
    kinds.add_parser("mtls", help="epns traffic goes to the broker that wants a client certificate")
    hostile = kinds.add_parser("hostile", help="epns traffic goes to a misbehaving peer")
    hostile.add_argument("mode", choices=tuple(HOSTILE_PORTS))
    lat = kinds.add_parser("latency", help="added round-trip time and loss between the agent and the services")
    lat.add_argument("--rtt-ms", type=int, required=True)
    lat.add_argument("--loss", type=float, default=0.0, help="percent per direction")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="lab.py", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="build the lab (tears down any previous one first)")
    up.add_argument("--agents", type=int, default=3)
    up.add_argument("--wol", action="store_true", help="also lan2 (198.18.2.0/24) behind pn-router2, one agent there")
    bcast = sub.add_parser("bcast-forwarding", help="(--wol labs) pn-router2 forwards directed broadcasts or not")
    bcast.add_argument("state", choices=("on", "off"))
    sub.add_parser("down", help="remove the lab and anything a crashed run left")
    sub.add_parser("status", help="print the lab's state as JSON")
    fault_parser(sub)
    clear = sub.add_parser("clear", help="switch one agent's faults off (all, or one KIND)")
    clear.add_argument("agent")
    clear.add_argument("kind", nargs="?", choices=KINDS)
    broker = sub.add_parser("broker", help="stop or start the broker for everyone")
    broker.add_argument("action", choices=("stop", "start"))
    service = sub.add_parser("service", help="start or stop a daemon (or ufw) in an agent's or the server's namespaces")
    service.add_argument("host")
    service.add_argument("action", choices=("start", "stop"))
    service.add_argument("name", choices=SERVICES)
    exe = sub.add_parser("exec", help="run a command in a host's namespaces: exec HOST -- CMD...")
    exe.add_argument("host")
    exe.add_argument("argv", nargs=argparse.REMAINDER)
    return top


def fault_options(args: argparse.Namespace) -> dict[str, object]:
    names = {"block": ("port", "to", "action", "family"), "idle-cut": ("seconds", "reset"),
             "intercept": ("trusted", "ca"),
             "hostile": ("mode",), "dns": ("mode", "seconds"), "latency": ("rtt_ms", "loss")}
    return {name: getattr(args, name) for name in names.get(args.kind, ())}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    require_root()
    if args.command == "up":
        Lab(agents=args.agents, progress=say, wol=args.wol).up()
    elif args.command == "down":
        Lab(progress=say).down()
    elif args.command == "status":
        try:
            print(json.dumps(Lab.attach().status(), indent=1))
        except LabError:
            print(json.dumps(Lab().status(), indent=1))
    elif args.command == "fault":
        Lab.attach(progress=say).fault(args.agent, args.kind, **fault_options(args))
    elif args.command == "clear":
        Lab.attach(progress=say).clear(args.agent, args.kind)
    elif args.command == "bcast-forwarding":
        Lab.attach(progress=say).directed_broadcast(args.state == "on")
    elif args.command == "broker":
        Lab.attach(progress=say).broker(args.action)
    elif args.command == "service":
        lab = Lab.attach(progress=say)
        (lab.start_service if args.action == "start" else lab.stop_service)(args.host, args.name)
    elif args.command == "exec":
        command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        if not command:
            raise LabError("exec HOST -- CMD...")
        import subprocess
        return subprocess.call(Lab.attach().exec_argv(args.host, command))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LabError as exc:
        say(f"error: {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        say("interrupted")
        sys.exit(130)
