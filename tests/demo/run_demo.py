#!/usr/bin/env python3
"""`make demo`: build the lab, run the main job against it, show where the report is, tear the lab down.

Three agents: agent1 healthy; agent2 behind the proxy port that allows CONNECT to 443 only, with direct egress
to EPNS blocked (as in a network whose agents must use the proxy); agent3 with 8883 dropped on the path.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests" / "lab"), str(REPO / "tests" / "integration")]

from _ansible import BIN, ansible_env  # noqa: E402
from pnlab import Lab  # noqa: E402

REPORT_DIR = Path(os.environ.get("EPNS_DEMO_REPORT_DIR", REPO / "reports" / "demo"))


def say(line: str) -> None:
    print(f"demo: {line}", flush=True)


def main() -> int:
    with Lab(agents=3, progress=say) as lab:
        healthy, behind_proxy, dropped = lab.agents
        for port in (8883, 443):
            lab.fault(behind_proxy, "block", port=port, to="epns")
        lab.fault(dropped, "block", port=8883)
        say(f"{healthy}: healthy; {behind_proxy}: only the 443-only proxy; {dropped}: 8883 dropped on the path")
        argv = [str(BIN / "ansible-playbook"), "-i", str(lab.inventory), "-i", str(REPO / "tests/demo/inventory"),
                str(REPO / "playbooks" / "verify.yml"),
                "-e", "epns_targets=agents", "-e", f"epns_verify_report_dir={REPORT_DIR}",
                "-e", "epns_verify_report_title='EPNS reachability (demo lab)'"]
        done = subprocess.run(argv, env=ansible_env(lab), cwd=REPO, check=False)
    say(f"report: {REPORT_DIR}/epns-report.html (also .md, .json, .junit.xml)")
    # agent2 and agent3 are degraded on purpose; only an unreachable host or a broken run fails the demo.
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
