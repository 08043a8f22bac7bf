#!/usr/bin/env python3
"""`make demo`: build the lab, run the main job (playbooks/site.yml) against it, show the report, tear down.

agent1, agent3 and the server start behind their own default-deny egress firewall, so nothing reaches EPNS (red).
site.yml opens exactly the EPNS egress, lets the proxy CONNECT to 8883, and probes again:
  agent1  healthy path                                   -> reachable
  agent2  direct egress blocked on the path; its proxy,  -> degraded (8883 via the proxy: proxy_refused), then
          a stock Debian squid, allows CONNECT to 443 only     reachable once site.yml lets the proxy CONNECT to 8883
  agent3  8883 dropped on the path                       -> degraded: only 443 works
  server  the ESET PROTECT server, iptables firewall     -> reachable
  squid, apache: the proxies themselves (their own egress is probed too)
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests" / "lab"), str(REPO / "tests" / "integration")]

from _ansible import BIN, ansible_env  # noqa: E402
from _firewall import iptables_default_deny, nft_default_deny  # noqa: E402
from pnlab import Lab  # noqa: E402

REPORT_DIR = Path(os.environ.get("EPNS_DEMO_REPORT_DIR", REPO / "reports" / "demo"))


def say(line: str) -> None:
    print(f"demo: {line}", flush=True)


def main() -> int:
    with Lab(agents=3, progress=say) as lab:
        healthy, behind_proxy, dropped = lab.agents
        # agent2's own firewall stays open, so its report row shows the proxy alone: degraded, then reachable.
        for host in (healthy, dropped):
            nft_default_deny(lab, host)
        iptables_default_deny(lab, lab.server, "nft")
        for port in (8883, 443):
            lab.fault(behind_proxy, "block", port=port, to="epns")
        lab.fault(dropped, "block", port=8883)
        say(f"{healthy}, {dropped} and the server have a default-deny egress firewall; {behind_proxy}: direct EPNS "
            f"blocked on the path, uses squid.lab (CONNECT to 443 only); {dropped}: 8883 dropped")
        argv = [str(BIN / "ansible-playbook"), "-i", str(lab.inventory), "-i", str(REPO / "tests/demo/inventory"),
                str(REPO / "playbooks" / "site.yml"), "-e", f"epns_verify_report_dir={REPORT_DIR}",
                "-e", "epns_verify_report_title='EPNS readiness (demo lab)'", "--diff"]
        done = subprocess.run(argv, env=ansible_env(lab), cwd=REPO, check=False)
    say(f"report: {REPORT_DIR}/epns-report.html (also .md, .json, .junit.xml)")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
