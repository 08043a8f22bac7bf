"""Drive ansible-playbook against the lab from tests, the demo and the benchmark."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COLLECTIONS = REPO / ".build" / "collections"
PLAYBOOKS = Path(__file__).resolve().parent / "playbooks"


def ansible_env(lab: Any, extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": str(lab.ansible_cfg),
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_DEPRECATION_WARNINGS": "false",
        "ANSIBLE_NOCOLOR": "1",
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    })
    env.update(extra or {})
    return env


def run_playbook(lab: Any, playbook: Path, *, inventories: Sequence[Path] = (), extra_vars: Optional[dict] = None,
                 args: Sequence[str] = (), env: Optional[Mapping[str, str]] = None,
                 timeout: float = 300) -> subprocess.CompletedProcess:
    argv = [str(BIN / "ansible-playbook"), "-i", str(lab.inventory)]
    for inventory in inventories:
        argv += ["-i", str(inventory)]
    if extra_vars:
        argv += ["-e", json.dumps(extra_vars)]
    argv += [*args, str(playbook)]
    return subprocess.run(argv, env=ansible_env(lab, env), capture_output=True, text=True, timeout=timeout,
                          check=False, cwd=REPO)


def write_host_vars(directory: Path, per_host: Mapping[str, Mapping[str, Any]]) -> Path:
    """An inventory source that only adds variables to hosts the lab inventory defines."""
    (directory / "host_vars").mkdir(parents=True, exist_ok=True)
    (directory / "hosts.yml").write_text("all: {}\n")
    for host, variables in per_host.items():
        (directory / "host_vars" / f"{host}.yml").write_text(yaml.safe_dump(dict(variables)))
    return directory


def probe(lab: Any, per_host_args: Mapping[str, Mapping[str, Any]], *, args: Sequence[str] = (),
          connection: Optional[str] = None) -> Dict[str, Dict[str, Any]]:
    """Run epns_probe on each named host with its own arguments; return each host's registered result."""
    with tempfile.TemporaryDirectory(prefix="pn-probe-") as work:
        workdir = Path(work)
        overlay = write_host_vars(workdir / "inventory",
                                  {host: {"probe_args": dict(a)} for host, a in per_host_args.items()})
        result_file = workdir / "results.json"
        extra: List[str] = list(args)
        if connection:
            extra += ["-c", connection]
        done = run_playbook(lab, PLAYBOOKS / "probe.yml", inventories=[overlay], args=extra,
                            extra_vars={"probe_targets": ",".join(per_host_args), "result_file": str(result_file)})
        if not result_file.exists():
            raise AssertionError(f"ansible-playbook wrote no results (rc={done.returncode}):\n"
                                 f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
        results: Dict[str, Dict[str, Any]] = json.loads(result_file.read_text())
        return results
