"""Per-host services in the lab: firewalld and ufw in agents' own namespaces, cron reading the agent's overlay,
and `down` removing all of it. The root namespace is only ever read (`nft list ruleset`)."""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest
from pnlab import Lab
from pnlab.proc import alive
from pnlab.teardown import lab_namespaces

pytestmark = pytest.mark.lab

BROKER4, BROKER6 = "198.18.1.10", "2001:db8:0:1::10"
POLICY = "pnlab-test-egress"
RICH = f'rule family="ipv4" destination address="{BROKER4}" port port="8883" protocol="tcp" accept'

CONNECT = r'''
import json, socket, sys
out = {}
for host, port in json.loads(sys.argv[1]):
    try:
        socket.create_connection((host, port), 1.5).close(); out[f"{host}:{port}"] = "ok"
    except OSError as exc:
        out[f"{host}:{port}"] = type(exc).__name__
print(json.dumps(out))
'''


def root_ruleset() -> str:
    return subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True, check=True).stdout


def connects(lab: Lab, host: str, targets: list[tuple[str, int]]) -> dict[str, str]:
    done = lab.run(host, ["python3", "-c", CONNECT, json.dumps(targets)], check=True)
    result: dict[str, str] = json.loads(done.stdout)
    return result


def ssh(lab: Lab, host: str, command: str, master: Path, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """Every call rides the one TCP connection of a ControlMaster, so a later call proves that session survived."""
    address = lab.addresses[host]["ipv4"]
    argv = ["ssh", "-F", "/dev/null", "-i", str(lab.ssh_key), "-o", f"UserKnownHostsFile={lab.known_hosts}",
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "ControlMaster=auto", "-o", f"ControlPath={master}",
            "-o", "ControlPersist=60", f"root@{address}", command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def firewalld_agents(lab: Lab) -> Iterator[list[str]]:
    agents = lab.agents[:2]
    if len(agents) < 2:
        pytest.skip("needs two agents")
    try:
        yield agents
    finally:
        for agent in agents:
            if "firewalld" in lab.services(agent):
                lab.run(agent, ["firewall-cmd", "--permanent", "--delete-policy", POLICY])
            lab.stop_service(agent, "dbus")  # stops firewalld first; CleanupOnExit removes its rules


def test_firewalld_runs_in_two_agents_with_independent_state(lab: Lab, firewalld_agents: list[str]) -> None:
    one, two = firewalld_agents
    before = root_ruleset()
    for agent in (one, two):
        pid = lab.start_service(agent, "firewalld")
        assert pid and alive(pid)
        assert lab.run(agent, ["firewall-cmd", "--state"]).stdout.strip() == "running"
    assert lab.services(one)["firewalld"] != lab.services(two)["firewalld"]

    for argv in (["--permanent", "--new-policy", POLICY],
                 ["--permanent", "--policy", POLICY, "--add-ingress-zone", "HOST"],
                 ["--permanent", "--policy", POLICY, "--add-egress-zone", "ANY"],
                 ["--permanent", "--policy", POLICY, "--add-rich-rule", RICH],
                 ["--reload"]):
        lab.run(one, ["firewall-cmd", *argv], check=True)

    assert POLICY in lab.run(one, ["firewall-cmd", "--get-policies"]).stdout.split()
    assert RICH in lab.run(one, ["firewall-cmd", "--policy", POLICY, "--list-rich-rules"]).stdout
    assert f"ip daddr {BROKER4} tcp dport 8883 accept" in lab.run(one, ["nft", "list", "ruleset"]).stdout
    # the other agent: its own firewalld, its own /etc/firewalld, its own ruleset
    assert POLICY not in lab.run(two, ["firewall-cmd", "--get-policies"]).stdout.split()
    assert POLICY not in lab.run(two, ["firewall-cmd", "--permanent", "--get-policies"]).stdout.split()
    assert POLICY not in lab.run(two, ["nft", "list", "ruleset"]).stdout
    assert lab.run(two, ["test", "-e", f"/etc/firewalld/policies/{POLICY}.xml"]).returncode == 1
    assert not Path(f"/etc/firewalld/policies/{POLICY}.xml").exists()
    assert root_ruleset() == before

    lab.stop_service(one, "firewalld")
    assert "firewalld" not in lab.services(one) and "dbus" in lab.services(one)
    assert "table inet firewalld" not in lab.run(one, ["nft", "list", "ruleset"]).stdout
    assert lab.run(two, ["firewall-cmd", "--state"]).stdout.strip() == "running"


@pytest.fixture
def ufw_agent(lab: Lab) -> Iterator[str]:
    agent = lab.agents[-1]
    try:
        yield agent
    finally:
        lab.run(agent, ["ufw", "--force", "reset"], timeout=60)
        lab.stop_service(agent, "ufw")


def test_ufw_default_deny_egress_with_one_allow(lab: Lab, ufw_agent: str, tmp_path: Path) -> None:
    master = tmp_path / "ssh-master"
    before = root_ruleset()
    assert connects(lab, ufw_agent, [(BROKER4, 8883), (BROKER4, 443)]) == {
        f"{BROKER4}:8883": "ok", f"{BROKER4}:443": "ok"}
    # Conntrack pitfall: the namespace tracks nothing until ufw loads its rules, so the SSH session that turns
    # egress to deny would lose its own replies (measured: hangs). Allowing sshd's replies by source port keeps it.
    setup = ("ufw allow in 22/tcp && ufw allow out proto tcp from any port 22 && ufw default deny outgoing && "
             f"ufw allow out to {BROKER4} port 8883 proto tcp comment 'x' && echo configured")
    assert "configured" in ssh(lab, ufw_agent, setup, master).stdout
    session = subprocess.run(["ssh", "-o", f"ControlPath={master}", "-O", "check", "x"], capture_output=True, text=True)
    assert "Master running" in session.stderr
    started = time.monotonic()
    lab.start_service(ufw_agent, "ufw")
    done = ssh(lab, ufw_agent, "ufw status verbose; echo session-survives", master)
    assert "session-survives" in done.stdout, done.stderr
    subprocess.run(["ssh", "-o", f"ControlPath={master}", "-O", "exit", "x"], capture_output=True)
    assert time.monotonic() - started < 30
    assert "Default: deny (incoming), deny (outgoing)" in done.stdout
    assert f"{BROKER4} 8883/tcp" in done.stdout and "ALLOW OUT" in done.stdout and "# x" in done.stdout

    result = connects(lab, ufw_agent, [(BROKER4, 8883), (BROKER4, 443), (BROKER6, 8883)])
    assert result[f"{BROKER4}:8883"] == "ok"
    assert result[f"{BROKER4}:443"] == "TimeoutError"  # ufw's deny is a DROP
    assert result[f"{BROKER6}:8883"] == "TimeoutError"  # no v6 rule was added
    # ufw keeps its state in the agent's overlay /etc (and its lock in the private /run), nowhere else
    assert "comment=78" in lab.run(ufw_agent, ["cat", "/etc/ufw/user.rules"]).stdout
    assert "comment=78" not in Path("/etc/ufw/user.rules").read_text()
    assert "ENABLED=yes" in lab.run(ufw_agent, ["cat", "/etc/ufw/ufw.conf"]).stdout
    assert root_ruleset() == before


def test_cron_runs_jobs_from_the_agents_overlay(lab: Lab) -> None:
    agent = lab.agents[0]
    job = "pnlab-test-job"
    # An @reboot job fires as cron starts, so the test need not wait for a minute boundary.
    crontab = f"@reboot root echo \"$(hostname)\" > /run/{job}.reboot\n"
    lab.run(agent, ["sh", "-c", f"cat > /etc/cron.d/{job}"], input=crontab, check=True)
    assert not Path(f"/etc/cron.d/{job}").exists()
    try:
        pid = lab.start_service(agent, "cron")
        assert pid and alive(pid)
        holder = lab.holder(agent)
        reboot = Path(f"/proc/{holder}/root/run/{job}.reboot")
        deadline = time.monotonic() + 10
        while not reboot.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert reboot.read_text().strip() == agent  # ran inside the agent's UTS namespace, wrote its private /run
        assert not Path(f"/run/{job}.reboot").exists()
    finally:
        lab.run(agent, ["rm", "-f", f"/etc/cron.d/{job}"])
        lab.stop_service(agent, "cron")
    assert "cron" not in lab.services(agent)


def test_cli_service_start_stop(lab: Lab) -> None:
    cli = ["python3", str(Path(__file__).resolve().parent.parent / "lab" / "lab.py")]
    agent = lab.agents[0]
    subprocess.run([*cli, "service", agent, "start", "dbus"], check=True, timeout=30, capture_output=True)
    pid = lab.services(agent)["dbus"]
    assert pid and alive(pid)
    assert lab.run(agent, ["test", "-S", "/run/dbus/system_bus_socket"]).returncode == 0
    subprocess.run([*cli, "service", agent, "stop", "dbus"], check=True, timeout=30, capture_output=True)
    assert not alive(pid) and "dbus" not in lab.services(agent)


def test_zz_down_stops_every_service(lab: Lab) -> None:
    before = root_ruleset()
    agent = lab.agents[0]
    pids = [lab.start_service(agent, "firewalld"), lab.start_service(agent, "cron"), lab.services(agent)["dbus"]]
    lab.start_service(lab.agents[-1], "ufw")
    lab.down()
    assert not [pid for pid in pids if pid and alive(pid)]
    assert lab_namespaces() == []
    assert not lab.state_dir.exists()
    assert str(lab.state_dir) not in Path("/proc/self/mountinfo").read_text()
    assert root_ruleset() == before
    lab.up()
