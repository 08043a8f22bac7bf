"""Smoke test under the oldest ansible-core that meta/runtime.yml claims: epns_probe and epns_firewall on one lab
agent through a real ansible-playbook run. `make core216-test` runs it (with the unit tests) from .venv-core216,
whose ansible-playbook _ansible.py picks (it runs the one beside sys.executable); under any other ansible-core the
whole file is skipped, since the main lane covers the newest release in depth. docs/supported-versions.md."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest
import yaml
from _ansible import BIN, PLAYBOOKS, REPO, probe, run_playbook, write_host_vars
from _firewall import CONFIRMED_ROLLBACK_SECONDS, clean_host, firewall, nft_default_deny, path_failures
from ansible.release import __version__ as ANSIBLE_CORE

pytestmark = pytest.mark.lab

OLDEST = re.match(r">=\s*(\d+\.\d+)", yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())["requires_ansible"])
OLDEST_CORE = OLDEST.group(1) if OLDEST else "?"
if not ANSIBLE_CORE.startswith(OLDEST_CORE + "."):
    pytest.skip(f"the oldest claimed ansible-core ({OLDEST_CORE}) is tested by `make core216-test`; this is "
                f"{ANSIBLE_CORE}", allow_module_level=True)

PROBE = {"timeout": 5, "connect_timeout": 1.5}
# A Python older than the floor where the machine has one (pyenv); a fresh machine has none, and skips that test.
PYTHON_36 = next((str(p) for p in (Path("/usr/bin/python3.6"), Path.home() / ".pyenv/versions/3.6.15/bin/python")
                  if p.exists()), None)


@pytest.fixture(scope="module")
def agent(lab: Any) -> Iterator[str]:
    host = lab.agents[0]
    clean_host(lab, host)
    yield host
    clean_host(lab, host)


def test_the_playbook_runs_the_oldest_claimed_ansible_core() -> None:
    done = subprocess.run([str(BIN / "ansible-playbook"), "--version"], capture_output=True, text=True, check=True)
    assert f"[core {OLDEST_CORE}." in done.stdout, done.stdout


def test_probe_and_firewall_open_epns_on_one_agent(lab: Any, agent: str) -> None:
    nft_default_deny(lab, agent)
    before = probe(lab, {agent: PROBE})[agent]
    assert before["verdict"] == "unreachable", path_failures(before)

    applied = firewall(lab, {agent: {"backend": "nftables", "rollback_seconds": CONFIRMED_ROLLBACK_SECONDS}})[agent]
    assert applied.get("failed") is not True, applied.get("msg")
    assert applied["changed"] is True
    assert applied["rollback"]["state"] == "confirmed"

    after = probe(lab, {agent: PROBE})[agent]
    assert after["verdict"] == "reachable", path_failures(after)

    again = firewall(lab, {agent: {"backend": "nftables", "rollback_seconds": CONFIRMED_ROLLBACK_SECONDS}})[agent]
    assert again["changed"] is False
    removed = firewall(lab, {agent: {"state": "absent"}})[agent]
    assert removed.get("failed") is not True, removed.get("msg")
    assert removed["changed"] is True


@pytest.mark.skipif(PYTHON_36 is None, reason="this machine has no Python 3.6 to point ansible_python_interpreter at")
def test_python_36_on_the_agent_gets_the_step_to_take(lab: Any, agent: str, tmp_path: Path) -> None:
    """ansible-core 2.16 still runs modules on Python 3.6 (RHEL 8, SLES 15): the module itself must refuse it."""
    overlay = write_host_vars(tmp_path / "inventory", {agent: {"ansible_python_interpreter": PYTHON_36,
                                                                "probe_args": PROBE}})
    result_file = tmp_path / "results.json"
    done = run_playbook(lab, PLAYBOOKS / "probe.yml", inventories=[overlay],
                        extra_vars={"probe_targets": agent, "result_file": str(result_file)})
    assert result_file.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    result: Dict[str, Any] = json.loads(result_file.read_text())[agent]
    assert result["failed"] is True
    assert "need Python 3.8 or newer on the managed host" in result["msg"], result
    assert re.search(r"with Python 3\.6\.\d+ \(" + re.escape(PYTHON_36) + r"\)", result["msg"]), result["msg"]
    assert "dnf install python3.11" in result["msg"]
