"""Role epns_monitor in the lab: the paths it installs to (each host's private /run: the lab shares /opt and /var/lib
with the machine), its extra vars for a fast schedule, and one run of the installed runner as cron starts it.
Used by tests/integration/test_monitor_lab.py and the end of `make demo`."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, Sequence

from _ansible import REPO

sys.path.insert(0, str(REPO / "tests" / "prometheus"))
import render_rules

PLAYBOOK = REPO / "playbooks" / "monitor.yml"
USER = "epns-monitor"
PATHS = {"epns_monitor_prefix": "/run/epns-opt", "epns_monitor_state_dir": "/run/epns-state",
         "epns_monitor_textfile_dir": "/run/epns-textfile", "epns_monitor_config_dir": "/etc/protectnet-epns"}
RULES_DIR = "/run/epns-rules"
RULE_FILES = f"{RULES_DIR}/*.yml"


def extra_vars(targets: Sequence[str], prometheus_host: str, reload_url: str, work: Path,
               state: str = "present", **more: Any) -> Dict[str, Any]:
    """A one-minute schedule without jitter or holds, and the rules (with a 3 s `for:`) on prometheus_host."""
    rules = work / "epns-alerts-short.yml"
    rules.write_text(render_rules.render("3s"))
    return {**PATHS, "epns_targets": ",".join(targets), "epns_monitor_state": state,
            "epns_monitor_interval_minutes": 1, "epns_monitor_allow_short_interval": True,
            "epns_monitor_jitter_seconds": 0, "epns_monitor_mqtt_every_minutes": 1, "epns_monitor_hold_seconds": 0,
            "epns_monitor_probe": {"connect_timeout": 3, "timeout": 20},
            "epns_monitor_prometheus_host": prometheus_host, "epns_monitor_prometheus_rules_dir": RULES_DIR,
            "epns_monitor_prometheus_rules_src": str(rules), "epns_monitor_prometheus_reload_url": reload_url,
            **more}


def run_now(lab: Any, host: str) -> str:
    """One run as cron starts it: the runner's user, its installed command, the mode its schedule picks."""
    done = lab.run(host, ["runuser", "-u", USER, "--", f"{PATHS['epns_monitor_prefix']}/bin/epns-probe", "--once",
                          "--json"], timeout=120)
    assert done.returncode in (0, 1, 2), f"{done.returncode}: {done.stderr}{done.stdout}"
    return str(done.stdout)


def start_prometheus(lab: Any, host: str) -> Any:
    """node_exporter on the role's textfile directory and Prometheus reading RULES_DIR (the server's rules
    directory the role installs into), both in host's namespaces."""
    done = lab.run(host, ["mkdir", "-p", RULES_DIR])
    assert done.returncode == 0, done.stderr
    return lab.start_prometheus(host, PATHS["epns_monitor_textfile_dir"], [RULE_FILES])
