#!/usr/bin/env python3
"""`make demo`: build the lab, run the main job (playbooks/site.yml) against it, show the report, tear down.

agent1, agent3 and the server start behind their own default-deny egress firewall, so nothing reaches EPNS (red).
site.yml opens exactly the EPNS egress, lets the proxy CONNECT to 8883, and probes again:
  agent1  healthy path                                   -> reachable
  agent2  direct egress blocked on the path; its proxy,  -> degraded (8883 via the proxy: proxy_refused), then
          a stock Debian squid, allows CONNECT to 443 only     reachable once site.yml lets the proxy CONNECT to 8883
  agent3  8883 dropped on the path                       -> degraded: only 443 works
  server  the ESET PROTECT server                        -> reachable
  squid, apache: the proxies themselves (their own egress is probed too)
The ESET PROTECT API emulator runs on the server host, with the lab's hosts registered as its devices: the
inventory is ESET PROTECT itself (protectnet.epns.eset_protect), and site.yml pushes the agents' HTTP-proxy policy
to it. ESET also lists two Windows laptops and a Mac: the roles skip them with a message, and the report lists
them as not probed.
Wake-on-LAN: the server sends magic packets to a multicast group (same segment) and to the directed broadcast of the
subnet behind a second router, which does not forward directed broadcasts: the report's last section says which
arrived where, and why not.
Last, the monitor (playbooks/monitor.yml) on agent3, with Debian's node_exporter and Prometheus in its namespaces:
the demo ends with the Prometheus query the monitor answers (8883 down on agent3, and the alert it raises).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests" / "lab"), str(REPO / "tests" / "integration"), str(REPO / "tests")]

from _ansible import BIN, ansible_env  # noqa: E402
from _eset_lab import group_paths_of, inventory_sources, seed_payload  # noqa: E402
from _firewall import nft_default_deny  # noqa: E402
from _monitor import PLAYBOOK, extra_vars, run_now, start_prometheus  # noqa: E402
from emulator.client import control  # noqa: E402
from emulator.pki import make_pki  # noqa: E402
from pnlab import Lab  # noqa: E402

REPORT_DIR = Path(os.environ.get("EPNS_DEMO_REPORT_DIR", REPO / "reports" / "demo"))
API_USER, API_PASSWORD = "api-user", "Api-Pa55word!"  # the emulator's built-in demo account


def start_emulator(lab: Lab, workdir: Path) -> tuple[subprocess.Popen[str], str, Path]:
    """The ESET PROTECT API emulator on the server host (On-Prem, port 9443), with a certificate for its address."""
    address = lab.addresses[lab.server]["ipv4"]
    pki = make_pki(workdir / "pki", [address])
    argv = lab.exec_argv(lab.server, [sys.executable, str(REPO / "tests/emulator/run.py"), "--deployment", "onprem",
                                      "--listen", f"{address}:9443", "--cert", str(pki.cert), "--key", str(pki.key)])
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("URL "):
            return process, line.split()[1], pki.ca
    raise SystemExit("the ESET PROTECT API emulator did not start")


def say(line: str) -> None:
    print(f"demo: {line}", flush=True)


PRIMARY_DOWN_QUERY = 'epns_path_up{port="8883"} == 0'


def show_monitor(lab: Lab, host: str, work: Path) -> int:
    """The monitor on one host, scraped by a real Prometheus; prints the query and its answer."""
    monitoring = start_prometheus(lab, host)
    extra = extra_vars([host], host, f"{monitoring.url}/-/reload", work)
    argv = [str(BIN / "ansible-playbook"), "-i", str(lab.inventory), "-e", json.dumps(extra), str(PLAYBOOK)]
    done = subprocess.run(argv, env=ansible_env(lab), cwd=REPO, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-2000:])
        return done.returncode
    run_now(lab, host)
    answer = monitoring.wait("an answer", lambda: monitoring.query(PRIMARY_DOWN_QUERY))
    say(f"monitor: Prometheus at {monitoring.url} scrapes {host}'s node_exporter; the query")
    say(f"  {PRIMARY_DOWN_QUERY}")
    for sample in answer:
        labels = sample["metric"]
        proxy = f" {labels['proxy']}" if labels.get("proxy") else ""
        say(f"  -> {labels['instance']} port {labels['port']} via {labels['via']}{proxy}: down")
    alerts = monitoring.wait("the alert", lambda: [a for a in monitoring.alerts()
                                                   if a["labels"]["alertname"] == "EPNSPrimaryPortDown"])
    for alert in alerts:
        say(f"  alert EPNSPrimaryPortDown ({alert['state']}): {alert['annotations']['summary']}")
        say(f"  hint: {alert['annotations']['hint']}")
    return 0


def main() -> int:
    with Lab(agents=3, wol=True, progress=say) as lab:
        healthy, behind_proxy, dropped = lab.agents
        # agent2's own firewall stays open, so its report row shows the proxy alone: degraded, then reachable.
        for host in (healthy, dropped):
            nft_default_deny(lab, host)
        nft_default_deny(lab, lab.server)
        for port in (8883, 443):
            lab.fault(behind_proxy, "block", port=port, to="epns")
        lab.fault(dropped, "block", port=8883)
        say(f"{healthy}, {dropped} and the server have a default-deny egress firewall; {behind_proxy}: direct EPNS "
            f"blocked on the path, uses squid.lab (CONNECT to 443 only); {dropped}: 8883 dropped")
        with tempfile.TemporaryDirectory(prefix="pn-demo-") as work:
            emulator, url, ca = start_emulator(lab, Path(work))
            say(f"ESET PROTECT API emulator: {url}")
            emulator_api = SimpleNamespace(url=url, ca_path=str(ca))
            control(emulator_api, "POST", "seed", seed_payload(lab, group_paths_of(control(emulator_api, "GET",
                                                                                           "state"))))
            # the connection comes from ESET_PROTECT_* below, as an AWX credential injects it
            sources = inventory_sources(Path(work) / "inventory", lab, {})
            say("inventory: ESET PROTECT's devices (" + ", ".join(str(s) for s in sources) + ")")
            api = {"ESET_PROTECT_SERVER": url.split("//")[1].rsplit(":", 1)[0], "ESET_PROTECT_PORT": "9443",
                   "ESET_PROTECT_USERNAME": API_USER, "ESET_PROTECT_PASSWORD": API_PASSWORD,
                   "ESET_PROTECT_CA_PATH": str(ca)}
            argv = [str(BIN / "ansible-playbook"), *(arg for source in sources for arg in ("-i", str(source))),
                    "-i", str(REPO / "tests/demo/inventory"),
                    str(REPO / "playbooks" / "site.yml"), "-e", f"epns_verify_report_dir={REPORT_DIR}",
                    "-e", "epns_verify_report_title='EPNS readiness (demo lab)'", "--diff",
                    # EPNS on the main segment; Wake-on-LAN also on the agent behind the second router
                    "-e", "epns_targets=all:!wol_agents", "-e", "epns_wol_targets=agents:wol_agents"]
            try:
                done = subprocess.run(argv, env=ansible_env(lab, api), cwd=REPO, check=False)
            finally:
                emulator.terminate()
                emulator.wait(timeout=10)
            say(f"report: {REPORT_DIR}/epns-report.html (also .md, .json, .junit.xml)")
            monitored = show_monitor(lab, dropped, Path(work))
    return done.returncode or monitored


if __name__ == "__main__":
    sys.exit(main())
