"""firewalld backend against recorded firewall-cmd 1.3.3 output: parsing, plans (exact argv, whole XML objects,
one reload), idempotence, address changes without reload, state=absent, persistence, detection."""
from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from ansible_collections.protectnet.epns.plugins.module_utils._firewall import _engine, _firewalld
from ansible_collections.protectnet.epns.plugins.module_utils._firewall._base import Settings
from ansible_collections.protectnet.epns.plugins.module_utils._firewall._model import (
    ApplyError,
    FirewallError,
    Group,
    Policy,
    PolicySpec,
    State,
)
from test_firewall_backends import FakeRunner

POLICY = Policy((Group("epns", (443, 8883), ("198.18.1.10/32",), ("2001:db8:0:1::10/128",)),))
MOVED = Policy((Group("epns", (443, 8883), ("198.18.1.11/32",), ("2001:db8:0:1::10/128",)),))
FC = "/usr/sbin/firewall-cmd"

# recorded in the lab (firewalld 1.3.3)
INFO_POLICY = "\n".join([
    "protectnet_epns (active)",
    "  priority: -32768",
    "  target: CONTINUE",
    "  ingress-zones: HOST",
    "  egress-zones: ANY",
    "  services: ",
    "  ports: ",
    "  protocols: ",
    "  masquerade: no",
    "  forward-ports: ",
    "  source-ports: ",
    "  icmp-blocks: ",
    "  rich rules: ",
    '\trule family="ipv4" destination ipset="protectnet_epns_epns_v4" port port="443" protocol="tcp" accept',
    '\trule family="ipv4" destination ipset="protectnet_epns_epns_v4" port port="8883" protocol="tcp" accept',
    '\trule family="ipv6" destination ipset="protectnet_epns_epns_v6" port port="443" protocol="tcp" accept',
    '\trule family="ipv6" destination ipset="protectnet_epns_epns_v6" port port="8883" protocol="tcp" accept',
    "",
])
INFO_V4 = """protectnet_epns_epns_v4
  type: hash:net
  options: family=inet
  entries: 198.18.1.10/32
"""
INFO_V6 = """protectnet_epns_epns_v6
  type: hash:net
  options: family=inet6
  entries: 2001:db8:0:1::10/128
"""
MISSING = (140, "", "Error: INVALID_POLICY: protectnet_epns\n")


def runner(installed: bool = True, running: bool = True) -> FakeRunner:
    answers: t.Dict[t.Tuple[str, ...], t.Tuple[int, str, str]] = {
        ("firewall-cmd", "--state"): (0, "running\n", "") if running else (252, "", "not running\n"),
        ("firewall-cmd", "--info-policy", "protectnet_epns"): (0, INFO_POLICY, "") if installed else MISSING,
        ("firewall-cmd", "--get-ipsets"): (0, "allow-host-ipv6 protectnet_epns_epns_v4 protectnet_epns_epns_v6\n"
                                           if installed else "allow-host-ipv6\n", ""),
        ("firewall-cmd", "--info-ipset", "protectnet_epns_epns_v4"): (0, INFO_V4, ""),
        ("firewall-cmd", "--info-ipset", "protectnet_epns_epns_v6"): (0, INFO_V6, ""),
    }
    return FakeRunner(answers, tools=("firewall-cmd", "tee", "rm"))


@pytest.fixture(autouse=True)
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for sub in ("policies", "ipsets"):
        (tmp_path / sub).mkdir()
    monkeypatch.setattr(_firewalld, "CONFIG_DIR", str(tmp_path))
    return tmp_path


def test_reads_the_runtime_and_a_second_run_is_empty() -> None:
    backend = _firewalld.FirewalldBackend(runner())
    current = backend.read_current()
    assert current.containers == {"policy protectnet_epns": "HOST -> ANY, target CONTINUE, priority -32768",
                                  "ipset protectnet_epns_epns_v4": "hash:net family=inet",
                                  "ipset protectnet_epns_epns_v6": "hash:net family=inet6"}
    assert current.sets["ipset protectnet_epns_epns_v6"] == frozenset({"2001:db8:0:1::10/128"})
    assert len(current.rules) == 4
    desired = backend.compute_desired(POLICY, current)
    assert current == desired
    assert not backend.plan(current, desired)


def test_fresh_install_stages_whole_xml_objects_checks_and_reloads_once(config_dir: Path) -> None:
    backend = _firewalld.FirewalldBackend(runner(installed=False))
    current = backend.read_current()
    assert current.empty
    desired = backend.compute_desired(POLICY, current)
    plan = backend.plan(current, desired)
    argvs = [s.do.argv for s in plan.steps]
    policy = str(config_dir / "policies" / "protectnet_epns.xml")
    v4 = str(config_dir / "ipsets" / "protectnet_epns_epns_v4.xml")
    v6 = str(config_dir / "ipsets" / "protectnet_epns_epns_v6.xml")
    assert argvs == [("/usr/sbin/tee", v4), ("/usr/sbin/tee", v6), ("/usr/sbin/tee", policy),
                     (FC, "--check-config"), (FC, "--reload"),
                     ("/usr/sbin/rm", "-f", v4), ("/usr/sbin/rm", "-f", v6), ("/usr/sbin/rm", "-f", policy)]
    assert not any("--permanent" in a for a in argvs)
    xml = plan.steps[2].do.stdin or ""
    assert '<policy target="CONTINUE" priority="-32768">' in xml
    assert xml.count("<rule family=") == 4 and '<port port="8883" protocol="tcp"/>' in xml
    assert "<entry>198.18.1.10/32</entry>" in (plan.steps[0].do.stdin or "")
    # the first staged file's undo also reloads, so a failure after the reload puts the runtime back
    assert plan.steps[0].undo == [_firewalld.Command(("/usr/sbin/rm", "-f", v4)), _firewalld.Command((FC, "--reload"))]
    # persistence writes the same objects; persist: false writes nothing
    files = {c.path: c.content for c in backend.persist(desired)}
    assert files[policy] == xml and set(files) == {policy, v4, v6}
    assert _firewalld.FirewalldBackend(runner(), Settings(persist=False)).persist(desired) == []


def test_address_change_is_runtime_entries_without_reload_and_an_ipset_file(config_dir: Path) -> None:
    backend = _firewalld.FirewalldBackend(runner())
    current = backend.read_current()
    for path, content in backend.render_files(current).items():
        Path(path).write_text(content)
    moved = backend.compute_desired(MOVED, current)
    assert backend.diff(current, moved).sets_only
    plan = backend.plan(current, moved)
    assert [s.do.argv for s in plan.steps] == [
        (FC, "--ipset", "protectnet_epns_epns_v4", "--add-entry", "198.18.1.11/32"),
        (FC, "--ipset", "protectnet_epns_epns_v4", "--remove-entry", "198.18.1.10/32")]
    assert plan.steps[0].undo[0].argv[-2:] == ("--remove-entry", "198.18.1.11/32")
    changes = backend.persist(moved)
    assert [c.path for c in changes] == [str(config_dir / "ipsets" / "protectnet_epns_epns_v4.xml")]
    assert "<entry>198.18.1.11/32</entry>" in (changes[0].content or "")


def test_absent_removes_the_objects_and_the_persisted_files(config_dir: Path) -> None:
    backend = _firewalld.FirewalldBackend(runner())
    current = backend.read_current()
    for path, content in backend.render_files(current).items():
        Path(path).write_text(content)
    (config_dir / "policies" / "host-own.xml").write_text("<policy/>\n")
    plan = backend.remove_own(current)
    argvs = [s.do.argv for s in plan.steps]
    assert argvs[:3] == [("/usr/sbin/rm", "-f", str(config_dir / "ipsets" / "protectnet_epns_epns_v4.xml")),
                         ("/usr/sbin/rm", "-f", str(config_dir / "ipsets" / "protectnet_epns_epns_v6.xml")),
                         ("/usr/sbin/rm", "-f", str(config_dir / "policies" / "protectnet_epns.xml"))]
    assert argvs[3:5] == [(FC, "--check-config"), (FC, "--reload")]
    assert not any("host-own" in " ".join(a) for a in argvs)
    removals = backend.persist(State())
    assert sorted(c.path for c in removals) == sorted(backend.render_files(current)) and not any(
        c.content for c in removals)


def test_failed_reload_undoes_the_staged_files_and_reloads() -> None:
    fake = runner(installed=False)
    fake.answers[("firewall-cmd", "--check-config")] = (1, "", "Error: INVALID_IPSET: bad entry\n")
    backend = _firewalld.FirewalldBackend(fake)
    current = backend.read_current()
    with pytest.raises(ApplyError) as caught:
        backend.apply(backend.plan(current, backend.compute_desired(POLICY, current)))
    assert caught.value.rolled_back
    tail = [call[0][:2] for call in fake.calls[-5:]]
    assert tail == [("firewall-cmd", "--check-config"), ("rm", "-f"), ("rm", "-f"), ("rm", "-f"),
                    ("firewall-cmd", "--reload")]


def test_detection_running_stopped_missing() -> None:
    assert _firewalld.FirewalldBackend.detect(runner()).usable
    stopped = _firewalld.FirewalldBackend.detect(runner(running=False))
    assert stopped.installed and not stopped.usable
    with pytest.raises(FirewallError, match="installed but not usable: the firewalld daemon is not running "
                                            r"\(firewall-cmd --state: not running\)"):
        _firewalld.FirewalldBackend(runner(running=False)).require_usable()
    assert not _firewalld.FirewalldBackend.detect(FakeRunner({}, tools=())).installed


def test_old_firewalld_without_policies_fails_clearly() -> None:
    fake = runner()
    fake.answers[("firewall-cmd", "--info-policy", "protectnet_epns")] = (
        2, "", "firewall-cmd: error: unrecognized arguments: --info-policy protectnet_epns\n")
    with pytest.raises(FirewallError, match="no policy objects"):
        _firewalld.FirewalldBackend(fake).read_current()


def test_engine_auto_picks_running_firewalld_and_check_mode_only_reads() -> None:
    fake = runner(installed=False)
    fake.tools |= {"nft", "ufw"}
    result = _engine.run(_engine.Request(spec=PolicySpec("198.18.1.10", (8883, 443))), fake, check_mode=True)
    assert result["backend"] == "firewalld"
    assert result["backend_reason"] == "auto: firewalld is the running firewall daemon (firewalld is running)"
    reads = {("firewall-cmd", "--state"), ("firewall-cmd", "--info-policy", "protectnet_epns"),
             ("firewall-cmd", "--get-ipsets"), ("nft", "-j", "list", "ruleset"), ("ufw", "status", "verbose")}
    assert {call[0] for call in fake.calls} <= reads
