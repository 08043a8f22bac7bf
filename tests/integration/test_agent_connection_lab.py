"""epns_agent_connection in the lab, through Ansible: the ERAAgent stand-in (tests/lab/eraagent.py) runs inside an
agent's namespaces and holds a real TLS + MQTT session with the lab broker on 8883, on 443, through the lab proxy
(CONNECT), or nothing; the module, run over ssh on that agent, must say which, and agree with `ss` there. Run as an
unprivileged user it must say it cannot see. Then the role: epns_verify registers the result before its probe, and a
second run of the role in the same play (as site.yml does) still works."""
from __future__ import annotations

import json
import subprocess
import tempfile
import time
import typing as t
from pathlib import Path

import pytest
from _ansible import PLAYBOOKS, run_playbook, write_host_vars

pytestmark = pytest.mark.lab

STAND_IN = Path(__file__).resolve().parents[1] / "lab" / "eraagent.py"
BROKER = {"198.18.1.10", "2001:db8:0:1::10"}
PROXY = {"198.18.1.20", "2001:db8:0:1::20"}
Started = t.Dict[str, t.Tuple[subprocess.Popen, float]]


@pytest.fixture
def stand_ins(lab: t.Any) -> t.Iterator[t.Callable[[str, t.Sequence[str]], None]]:
    started: Started = {}

    def start(host: str, args: t.Sequence[str]) -> None:
        argv = ["/usr/bin/python3", str(STAND_IN), "--ca", str(lab.ca_path), "--server-name", "epns.eset.com", *args]
        child = subprocess.Popen(lab.exec_argv(host, argv), stdout=subprocess.PIPE, text=True)
        started[host] = (child, time.time())
        line = child.stdout.readline() if child.stdout else ""
        assert line.startswith("ready"), f"{host}: the stand-in said {line!r}"

    start.started = started  # type: ignore[attr-defined]
    yield start
    for child, _when in started.values():
        child.kill()
        child.wait()


def look(lab: t.Any, per_host: t.Mapping[str, t.Mapping[str, t.Any]]) -> t.Dict[str, t.Dict[str, t.Any]]:
    with tempfile.TemporaryDirectory(prefix="pn-agent-") as work:
        overlay = write_host_vars(Path(work) / "inventory", per_host)
        result_file = Path(work) / "results.json"
        done = run_playbook(lab, PLAYBOOKS / "agent_connection.yml", inventories=[overlay],
                            extra_vars={"agent_targets": ",".join(per_host), "result_file": str(result_file)})
        assert result_file.exists(), done.stdout[-4000:] + done.stderr[-4000:]
        results: t.Dict[str, t.Dict[str, t.Any]] = json.loads(result_file.read_text())
        return results


def kernel_peers(lab: t.Any, host: str, pid: int) -> t.Set[t.Tuple[str, int]]:
    """What `ss` says the process holds, in the agent's own namespace: the module must agree with it."""
    lines = lab.run(host, ["ss", "-Htnp", "state", "established"], check=True).stdout.splitlines()
    peers = set()
    for line in lines:
        if f"pid={pid}," in line:
            address, _, port = line.split()[3].rpartition(":")
            peers.add((address.strip("[]").replace("::ffff:", ""), int(port)))
    return peers


def _the_one_connection(result: t.Dict[str, t.Any], lab: t.Any, host: str, started: Started) -> t.Dict[str, t.Any]:
    child, when = started[host]
    assert result["changed"] is False and result["visible"] is True and result["reason"] is None, result
    assert result["processes"] == [{"pid": child.pid, "name": "ERAAgent"}]
    (held,) = result["connections"]
    assert kernel_peers(lab, host, child.pid) == {(held["remote"], held["remote_port"])}
    assert when - 1.0 <= held["since"] <= time.time() and 0 <= held["up_seconds"] <= time.time() - when + 1
    return held


def test_the_module_tells_8883_443_the_proxy_and_nothing_apart(lab: t.Any, stand_ins: t.Any) -> None:
    agents = lab.agents[:3]
    stand_ins(agents[0], ["--connect", "epns.eset.com:8883"])
    stand_ins(agents[1], ["--connect", "epns.eset.com:443"])
    stand_ins(agents[2], ["--connect", "epns.eset.com:8883", "--proxy", "proxy.lab:3128"])
    results = look(lab, {a: {"agent_args": {"proxies": ["http://proxy.lab:3128"]}} for a in agents})
    for agent, port in ((agents[0], 8883), (agents[1], 443)):
        held = _the_one_connection(results[agent], lab, agent, stand_ins.started)
        assert held["target"] == "epns" and held["remote"] in BROKER and held["remote_port"] == port
        assert results[agent]["summary"]["state"] == "connected"
        assert (results[agent]["summary"]["port"], results[agent]["summary"]["via"]) == (port, "direct")
        assert results[agent]["message"].startswith(f"the agent itself is on {port} direct to EPNS (")
        assert set(results[agent]["epns_addresses"]) == BROKER
    held = _the_one_connection(results[agents[2]], lab, agents[2], stand_ins.started)
    assert held["target"] == "proxy" and held["remote"] in PROXY and held["remote_port"] == 3128
    assert held["proxy"] == "proxy.lab:3128"
    assert results[agents[2]]["summary"]["via"] == "proxy" and results[agents[2]]["summary"]["port"] is None
    # the same proxied session, when the proxy is not named: an "other" connection, not a claim about EPNS
    unnamed = look(lab, {agents[2]: {"agent_args": {}}})[agents[2]]
    assert unnamed["summary"]["state"] == "not_connected" and unnamed["connections"][0]["target"] == "other"


def test_idle_absent_and_unprivileged(lab: t.Any, stand_ins: t.Any) -> None:
    agents = lab.agents[:3]
    stand_ins(agents[0], [])
    stand_ins(agents[1], ["--connect", "epns.eset.com:8883"])
    results = look(lab, {agents[0]: {"agent_args": {}}, agents[1]: {"agent_args": {}, "agent_as": "nobody"},
                         agents[2]: {"agent_args": {}}})
    idle = results[agents[0]]
    assert idle["summary"] == {"state": "not_connected", "port": None, "via": None, "up_seconds": None}, idle
    assert idle["connections"] == [] and idle["visible"] is True
    blind, pid = results[agents[1]], stand_ins.started[agents[1]][0].pid
    assert blind["visible"] is False and blind["summary"]["state"] == "cannot_see", blind
    # an unprivileged user cannot read another process's network namespace either, so every ERAAgent of the
    # lab's one PID namespace is kept, each unseen (on a real host there is one agent)
    assert {"pid": pid, "name": "ERAAgent"} in blind["processes"] and blind["connections"] == []
    assert f"/proc/{pid}/fd: Permission denied" in blind["reason"] and "become: true" in blind["reason"]
    # the stand-ins of the other agents run in the same PID namespace but not in agent3's network: not its agent
    assert results[agents[2]]["summary"]["state"] == "no_agent" and results[agents[2]]["processes"] == []


ROLE_TWICE = """---
- name: The role twice in one play, as site.yml runs it before and after its changes
  hosts: "{{ agent_targets }}"
  gather_facts: false
  tasks:
    - name: First run
      ansible.builtin.include_role: {name: protectnet.epns.epns_verify}
      vars: {epns_verify_report: false, epns_verify_fail_on: never, epns_verify_ca_path: "{{ lab_ca_path }}"}
    - name: Keep the first result
      ansible.builtin.set_fact: {first: "{{ epns_verify_agent_connection_result }}"}
    - name: Second run
      ansible.builtin.include_role: {name: protectnet.epns.epns_verify}
      vars: {epns_verify_report: false, epns_verify_fail_on: never, epns_verify_ca_path: "{{ lab_ca_path }}"}
    - name: Save
      ansible.builtin.copy:
        content: "{{ {'first': first, 'second': epns_verify_agent_connection_result,
                      'probe': epns_verify_result.verdict} | to_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      delegate_to: localhost
"""


def test_the_role_registers_it_before_the_probe_and_runs_again(lab: t.Any, stand_ins: t.Any,
                                                                tmp_path: Path) -> None:
    agent = lab.agents[0]
    stand_ins(agent, ["--connect", "epns.eset.com:443"])
    playbook, result_file = tmp_path / "role_twice.yml", tmp_path / "role.json"
    playbook.write_text(ROLE_TWICE)
    done = run_playbook(lab, playbook, extra_vars={"agent_targets": agent, "result_file": str(result_file)})
    assert done.returncode == 0 and result_file.exists(), done.stdout[-4000:] + done.stderr[-4000:]
    seen = json.loads(result_file.read_text())
    for run in ("first", "second"):
        assert seen[run]["summary"]["state"] == "connected" and seen[run]["summary"]["port"] == 443, seen[run]
    assert seen["probe"] == "reachable"
    # switched off (an extra var outranks the registered result): skipped both times, the probe still runs
    done = run_playbook(lab, playbook, extra_vars={"agent_targets": agent, "result_file": str(result_file),
                                                   "epns_verify_agent_connection": False})
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    seen = json.loads(result_file.read_text())
    assert seen["first"].get("skipped") and seen["second"].get("skipped") and seen["probe"] == "reachable", seen
