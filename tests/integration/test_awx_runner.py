"""The AWX assets run as AWX runs them (tests/integration/_awx.py: ansible-runner, AWX's credential injection):
the inventory source with each ESET PROTECT credential type against the emulator, the job templates against the
lab and the emulator, and a credential type whose injector names a variable nobody reads, which must fail.

Run inside the sandbox (tests/tools/sandbox): the Cloud test points the real ESET Connect host names at the
emulator through the sandbox's throwaway /etc/hosts and listens on 127.0.0.1:443."""
from __future__ import annotations

import copy
import json
import os
import sys
import typing as t
from pathlib import Path

import pytest
from _awx import Credential, Machine, Run, inventory_update, job, named, static_inventory

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from emulator import DEFAULT_USERS, Emulator  # noqa: E402
from emulator.client import control  # noqa: E402

pytestmark = pytest.mark.lab

USER = "api-user"
PASSWORD = DEFAULT_USERS[USER]
SOURCE = "ESET PROTECT"
FLEET = {"devices": 300, "seed": 14}
TARGET_GROUP = "All/Europe/Bratislava/Linux servers"
REGION = "de"  # not the default region: the credential's choice must be what reaches the plugin
CONNECT_SERVICES = ("device-management", "business-account.iam", "policy-management")


def onprem_credential(emu: Emulator, ctype: t.Optional[t.Mapping[str, t.Any]] = None) -> Credential:
    return Credential(ctype or named("credential_types", "ESET PROTECT On-Prem API"), {
        "server": "127.0.0.1", "port": str(emu.port), "username": USER, "password": PASSWORD,
        "ca_cert": Path(str(emu.ca_path)).read_text()})


def assert_secret_kept(run: Run) -> None:
    """What AWX keeps and shows: the output, the job events, the imported inventory. (Runner's own
    artifacts/<id>/command holds the whole environment; AWX deletes the private data dir after the job.)"""
    assert PASSWORD not in run.stdout
    kept = [*run.private_data_dir.glob("artifacts/*/job_events/*.json"),
            *run.private_data_dir.glob("artifacts/*/output.json")]
    assert kept
    for path in kept:
        assert PASSWORD not in path.read_text(errors="replace"), path


@pytest.fixture(scope="module")
def onprem() -> t.Iterator[Emulator]:
    with Emulator("onprem") as emu:
        control(emu, "POST", "fleet", FLEET)
        yield emu


def in_sandbox() -> bool:
    """/etc is the sandbox's overlay (tests/tools/sandbox): editing /etc/hosts there changes nothing outside."""
    with open("/proc/self/mountinfo", encoding="utf-8") as mounts:
        return any(line.split()[4] == "/etc" and " - overlay " in line for line in mounts)


@pytest.fixture(scope="module")
def cloud() -> t.Iterator[Emulator]:
    if not in_sandbox() or os.geteuid() != 0:
        pytest.skip("needs the sandbox (tests/tools/sandbox): it edits /etc/hosts and listens on port 443")
    hosts = Path("/etc/hosts")
    before = hosts.read_text()
    names = " ".join(f"{REGION}.{service}.eset.systems" for service in CONNECT_SERVICES)
    hosts.write_text(before + f"\n127.0.0.1 {names}\n")
    try:
        with Emulator("cloud", port=443) as emu:
            control(emu, "POST", "fleet", FLEET)
            yield emu
    finally:
        hosts.write_text(before)


def eset_groups(run: Run) -> t.Set[str]:
    assert run.output is not None
    return {g for g in run.output if g.startswith("eset_")}


# -- (a), (b): the inventory source --------------------------------------------------------------------------------

def test_inventory_source_with_the_onprem_credential(onprem: Emulator, tmp_path: Path) -> None:
    run = inventory_update(SOURCE, onprem_credential(onprem), tmp_path)
    assert run.status == "successful", run.stdout[-4000:]
    assert len(run.hosts()) >= FLEET["devices"] - 10  # clones kept once
    assert {"eset_All", "eset_os_linux", "eset_os_windows"} <= eset_groups(run)
    # the source file's own group: every device with its Management Agent (the Wake-on-LAN templates' default)
    agents = set(run.output["agents"]["hosts"])
    assert agents and agents == {h for h, v in run.output["_meta"]["hostvars"].items() if v["eset_agent_version"]}
    # the CA went through the file injector: a private file, named by ESET_PROTECT_CA_PATH
    ca_file = Path(run.env["ESET_PROTECT_CA_PATH"])
    assert ca_file.parent == run.private_data_dir / "env" and ca_file.stat().st_mode & 0o777 == 0o600
    windows = run.output["eset_os_windows"]["hosts"]
    assert windows and all(run.output["_meta"]["hostvars"][h]["epns_probe_supported"] is False
                           for h in windows)
    assert run.output["all"]["vars"]["eset_inventory"]["deployment"] == "on_prem"
    assert_secret_kept(run)


def test_inventory_source_with_the_cloud_credential(cloud: Emulator, tmp_path: Path) -> None:
    credential = Credential(named("credential_types", "ESET PROTECT Cloud API"),
                            {"region": REGION, "username": USER, "password": PASSWORD})
    # The EE trusts the emulator's CA through its trust store; nothing else says where ESET Connect is.
    run = inventory_update(SOURCE, credential, tmp_path, ee={"SSL_CERT_FILE": str(cloud.ca_path)})
    assert run.status == "successful", run.stdout[-4000:]
    assert len(run.hosts()) >= FLEET["devices"] - 10
    assert {"eset_All", "eset_os_linux"} <= eset_groups(run)
    assert run.output["all"]["vars"]["eset_inventory"]["deployment"] == "cloud"
    # by the real host names (no service prefix in the path), in the credential's region
    calls = [r for r in cloud.requests if r["service"] == "device-management"]
    assert calls and all(not r["path"].startswith("/device-management") for r in calls)
    assert {r["headers"].get("Host", r["headers"].get("host", "")) for r in calls} == {
        f"{REGION}.device-management.eset.systems"}
    assert_secret_kept(run)


def test_inventory_source_without_the_trust_store_fails_on_tls(cloud: Emulator, tmp_path: Path) -> None:
    credential = Credential(named("credential_types", "ESET PROTECT Cloud API"),
                            {"region": REGION, "username": USER, "password": PASSWORD})
    run = inventory_update(SOURCE, credential, tmp_path, ee={"SSL_CERT_FILE": os.devnull})
    assert run.status == "failed"
    assert "certificate" in run.stdout.lower(), run.stdout[-3000:]


# -- (c): job templates ----------------------------------------------------------------------------------------------

EMPTY_INVENTORY = {"all": {"children": ["ungrouped"]}, "_meta": {"hostvars": {}}}


def test_agent_proxy_policy_template(onprem: Emulator, tmp_path: Path) -> None:
    # Only the proxy host answered: every other question at its survey default.
    run = job("EPNS agent proxy policy", EMPTY_INVENTORY, tmp_path, credentials=[onprem_credential(onprem)],
              answers={"epns_agent_proxy_host": "bridge.example.com"})
    assert run.status == "successful", run.stdout[-4000:]
    assert run.extra_vars["epns_agent_proxy_port"] == 3128 and run.extra_vars["epns_agent_proxy_state"] == "present"
    policy = next(p for p in onprem.state.snapshot()["policies"] if p["displayName"] == "EPNS via HTTP proxy")
    assert_secret_kept(run)
    run = job("EPNS agent proxy policy", EMPTY_INVENTORY, tmp_path, credentials=[onprem_credential(onprem)],
              answers={"epns_agent_proxy_host": "bridge.example.com", "epns_agent_proxy_targets": TARGET_GROUP})
    assert run.status == "successful", run.stdout[-4000:]
    state = onprem.state.snapshot()
    assert any(a["policyUuid"] == policy["uuid"] for a in state["assignments"]), state["assignments"]
    assert_secret_kept(run)


def test_verify_template_on_the_lab(lab: t.Any, tmp_path: Path) -> None:
    # AWX keeps the inventory in its database; the machine credential, not a variable, carries the key.
    inventory = static_inventory([lab.inventory], drop_vars=("ansible_ssh_private_key_file", "ansible_user"))
    machine = Machine("root", Path(lab.pki.ssh_key).read_text())
    run = job("EPNS verify", inventory, tmp_path, machine=machine, limit="agents")
    assert run.status == "successful", run.stdout[-4000:]
    report = json.loads((run.private_data_dir / "project" / "epns-report" / "epns-report.json").read_text())
    assert report["report"]["summary"]["total"] == len(lab.agents)
    assert report["report"]["summary"]["reachable"] == len(lab.agents)


# -- (d): an injector nobody reads -----------------------------------------------------------------------------------

def misnamed_type() -> t.Dict[str, t.Any]:
    ctype = copy.deepcopy(named("credential_types", "ESET PROTECT On-Prem API"))
    env = ctype["injectors"]["env"]
    env["ESET_PROTECT_HOST"] = env.pop("ESET_PROTECT_SERVER")
    ctype["name"] = "ESET PROTECT with a misnamed injector"
    return ctype


def test_a_misnamed_injector_fails_the_template(onprem: Emulator, tmp_path: Path) -> None:
    run = job("EPNS agent proxy policy", EMPTY_INVENTORY, tmp_path,
              credentials=[onprem_credential(onprem, misnamed_type())],
              answers={"epns_agent_proxy_host": "bridge.example.com"})
    assert run.status == "failed"
    assert "needs server (or ESET_PROTECT_SERVER)" in run.stdout, run.stdout[-3000:]


def test_a_misnamed_injector_fails_the_inventory_update(onprem: Emulator, tmp_path: Path) -> None:
    run = inventory_update(SOURCE, onprem_credential(onprem, misnamed_type()), tmp_path)
    assert run.status == "failed"
    assert "ESET_PROTECT_SERVER" in run.stdout, run.stdout[-3000:]
    assert_secret_kept(run)


def test_the_source_without_a_credential_says_what_is_missing(tmp_path: Path) -> None:
    run = inventory_update(SOURCE, None, tmp_path)
    assert run.status == "failed"
    # ansible-core's own check of a required option (it does not name ESET_PROTECT_USERNAME)
    assert "Required config 'username'" in run.stdout, run.stdout[-3000:]
