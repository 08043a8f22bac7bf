"""What connect() says when a rule stops a TCP SYN: measured in the lab, per place (this host, the router on the way),
rule and address family. docs/troubleshooting.md carries the table; test_errno_matrix_lab.py re-measures it."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List

from pnlab.faults import REJECT_ICMP4, REJECT_ICMP6

DOC = Path(__file__).resolve().parents[2] / "docs" / "troubleshooting.md"
BROKER = {"ipv4": "198.18.1.10", "ipv6": "2001:db8:0:1::10"}
PORT = 8883
# A table of the agent's own, removed after each measurement (later tests configure the agent's firewall).
LOCAL_TABLE = "pn_errno_matrix"
CONNECT_SECONDS = 3

_CONNECT = """
import errno, socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.settimeout(float(sys.argv[3]))
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("connected")
except socket.timeout:
    print("timeout")
except OSError as exc:
    print(errno.errorcode.get(exc.errno, str(exc.errno)))
"""


@dataclass(frozen=True)
class Row:
    where: str   # "this host" (the agent's own output hook) or "router" (a firewall on the way)
    rule: str    # "drop", "tcp reset", "icmp TYPE", "icmpv6 TYPE"
    family: str  # "ipv4" or "ipv6"
    errno: str   # what connect() raised: ECONNREFUSED, ..., or "timeout"
    says: str    # what the probe says of it (the reason in its message)


def rules(family: str) -> List[str]:
    icmp = [f"icmp {t}" for t in REJECT_ICMP4] if family == "ipv4" else [f"icmpv6 {t}" for t in REJECT_ICMP6]
    return ["drop", "tcp reset", *icmp]


def _nft_verdict(rule: str) -> str:
    if rule == "drop":
        return "drop"
    if rule == "tcp reset":
        return "reject with tcp reset"
    kind, typ = rule.split()
    return f"reject with {kind} type {typ}"


def _router_action(rule: str, family: str) -> str:
    if rule == "drop":
        return "drop"
    if rule == "tcp reset":
        return "reject"
    kind, typ = rule.split()
    return f"reject-icmp{'4' if kind == 'icmp' else '6'}:{typ}"


def connect_errno(lab: Any, agent: str, family: str) -> str:
    done = lab.run(agent, ["python3", "-c", _CONNECT, BROKER[family], str(PORT), str(CONNECT_SECONDS)],
                   timeout=CONNECT_SECONDS + 10)
    return done.stdout.strip() or done.stderr.strip()


def measure(lab: Any, agent: str, where: str, rule: str, family: str) -> str:
    if where == "router":
        lab.fault(agent, "block", port=PORT, to="epns", action=_router_action(rule, family), family=family)
        try:
            return connect_errno(lab, agent, family)
        finally:
            lab.clear(agent, "block")
    match = f"{'ip' if family == 'ipv4' else 'ip6'} daddr {BROKER[family]} tcp dport {PORT}"
    table = (f"table inet {LOCAL_TABLE} {{\n chain out {{\n  type filter hook output priority filter; policy accept;\n"
             f"  {match} {_nft_verdict(rule)}\n }}\n}}\n")
    done = lab.run(agent, ["nft", "-f", "-"], input=table)
    if done.returncode:
        raise RuntimeError(f"nft in {agent}: {done.stderr}")
    try:
        return connect_errno(lab, agent, family)
    finally:
        lab.run(agent, ["nft", "delete", "table", "inet", LOCAL_TABLE], check=True)


def documented() -> List[Row]:
    """The rows of the errno table in docs/troubleshooting.md (between its markers)."""
    text = DOC.read_text()
    body = text.split("<!-- errno-matrix:start -->", 1)[1].split("<!-- errno-matrix:end -->", 1)[0]
    rows = []
    for line in body.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or cells[0] in ("where", "") or set(cells[0]) <= set("-: "):
            continue
        rows.append(Row(*cells))
    return rows


def reason_of(errno_name: str) -> str:
    """The words the probe uses for a connect() failure with this errno (or a timeout)."""
    import errno as errno_mod
    import socket

    from ansible_collections.protectnet.epns.plugins.module_utils._probe._classify import classify_connect_error

    exc: BaseException
    if errno_name == "timeout":
        exc = socket.timeout("timed out")
    else:
        code = getattr(errno_mod, errno_name)
        exc = OSError(code, errno_mod.errorcode[code])
    _, message = classify_connect_error(exc, "T", via_proxy=False, deadline_bound=False, seconds=3)
    return re.sub(r"^T: ", "", message)
