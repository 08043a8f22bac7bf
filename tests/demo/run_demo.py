#!/usr/bin/env python3
"""`make demo`: build the lab, run the main job (playbooks/site.yml) against it, show the report, tear down.

Every host starts behind its own default-deny egress firewall, so nothing reaches EPNS (red). site.yml opens
exactly the EPNS egress and probes again:
  agent1  healthy path                                   -> reachable
  agent2  direct egress blocked on the path; its proxy   -> degraded: the proxy port allows CONNECT to 443 only
          (firewall: egress to the proxy instead)
  agent3  8883 dropped on the path                       -> degraded: only 443 works
  server  the ESET PROTECT server, iptables firewall     -> reachable
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
        _healthy, behind_proxy, dropped = lab.agents
        for host in lab.agents:
            nft_default_deny(lab, host)
        iptables_default_deny(lab, lab.server, "nft")
        for port in (8883, 443):
            lab.fault(behind_proxy, "block", port=port, to="epns")
        lab.fault(dropped, "block", port=8883)
        say("every host has a default-deny egress firewall; "
            f"{behind_proxy}: direct EPNS blocked on the path, uses the 443-only proxy; {dropped}: 8883 dropped")
        argv = [str(BIN / "ansible-playbook"), "-i", str(lab.inventory), "-i", str(REPO / "tests/demo/inventory"),
                str(REPO / "playbooks" / "site.yml"), "-e", f"epns_verify_report_dir={REPORT_DIR}",
                "-e", "epns_verify_report_title='EPNS readiness (demo lab)'", "--diff"]
        done = subprocess.run(argv, env=ansible_env(lab), cwd=REPO, check=False)
    say(f"report: {REPORT_DIR}/epns-report.html (also .md, .json, .junit.xml)")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
