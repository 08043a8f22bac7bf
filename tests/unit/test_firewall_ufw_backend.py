"""ufw backend against recorded ufw 0.36.2 output: parsing, plans (exact argv), idempotence, address changes,
state=absent, detection (inactive fails cleanly), check mode reads only."""
from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from _fake_runner import FakeRunner
from ansible_collections.protectnet.epns.plugins.module_utils._firewall import _engine, _ufw
from ansible_collections.protectnet.epns.plugins.module_utils._firewall._base import BackendOptions
from ansible_collections.protectnet.epns.plugins.module_utils._firewall._model import (
    FirewallError,
    Group,
    Policy,
    PolicySpec,
    State,
)

POLICY = Policy((Group("epns", (443, 8883), ("91.228.165.144/30", "198.18.1.10/32"), ("2001:db8:0:1::10/128",)),))
MOVED = Policy((Group("epns", (443, 8883), ("91.228.165.144/30", "198.18.1.11/32"), ("2001:db8:0:1::10/128",)),))
V4 = "protectnet_epns epns ipv4 tcp 443,8883"
V6 = "protectnet_epns epns ipv6 tcp 443,8883"

# recorded in the lab (ufw 0.36.2, Debian 12)
STATUS_ACTIVE = """Status: active
Logging: on (low)
Default: deny (incoming), deny (outgoing), disabled (routed)
New profiles: skip

To                         Action      From
--                         ------      ----
Anywhere                   ALLOW OUT   22/tcp
198.18.1.10 443,8883/tcp   ALLOW OUT   Anywhere                   # protectnet_epns epns ipv4 tcp 443,8883
Anywhere (v6)              ALLOW OUT   22/tcp (v6)

"""
STATUS_INACTIVE = "Status: inactive\n"
ADDED_NONE = "Added user rules (see 'ufw status' for running firewall):\n(None)\n"
ADDED_OURS = f"""Added user rules (see 'ufw status' for running firewall):
ufw allow out from any port 22 proto tcp
ufw allow out 9999/tcp comment 'the host''s own'
ufw allow out to 198.18.1.10 port 443,8883 proto tcp comment '{V4}'
ufw allow out to 91.228.165.144/30 port 443,8883 proto tcp comment '{V4}'
ufw allow out to 2001:db8:0:1::10 port 443,8883 proto tcp comment '{V6}'
"""
READ_ONLY = {("ufw", "status", "verbose"), ("ufw", "show", "added")}


def runner(added: str = ADDED_NONE, status: str = STATUS_ACTIVE) -> FakeRunner:
    return FakeRunner({("ufw", "status", "verbose"): (0, status, ""), ("ufw", "show", "added"): (0, added, "")},
                      tools=("ufw",))


def args(network: str, comment: str = V4) -> tuple:
    return ("allow", "out", "to", network, "port", "443,8883", "proto", "tcp", "comment", comment)


def test_fresh_install_is_one_tagged_allow_out_rule_per_network_with_undo() -> None:
    backend = _ufw.UfwBackend(runner())
    current = backend.read_current()
    assert current.empty
    desired = backend.compute_desired(POLICY, current)
    assert desired.rules == {V4: _ufw.rule_text(V4), V6: _ufw.rule_text(V6)}
    plan = backend.plan(current, desired)
    assert [s.do.argv[1:] for s in plan.steps] == [args("91.228.165.144/30"), args("198.18.1.10/32"),
                                                   args("2001:db8:0:1::10/128", V6)]
    assert plan.steps[0].undo[0].argv[1:] == ("delete", *args("91.228.165.144/30"))


def test_reads_only_its_tagged_rules_and_a_second_run_is_empty() -> None:
    backend = _ufw.UfwBackend(runner(ADDED_OURS))
    current = backend.read_current()
    assert current.sets == {f"{V4}{_ufw.SET_SUFFIX}": frozenset({"198.18.1.10/32", "91.228.165.144/30"}),
                            f"{V6}{_ufw.SET_SUFFIX}": frozenset({"2001:db8:0:1::10/128"})}
    assert set(current.rules) == {V4, V6}  # the host's port-22 and 9999 rules are not ours
    desired = backend.compute_desired(POLICY, current)
    assert not backend.diff(current, desired).changed
    assert not backend.plan(current, desired)


def test_address_change_replaces_only_the_affected_rule_adds_first() -> None:
    backend = _ufw.UfwBackend(runner(ADDED_OURS))
    current = backend.read_current()
    moved = backend.compute_desired(MOVED, current)
    change = backend.diff(current, moved)
    assert change.sets_only
    plan = backend.plan(current, moved)
    assert [s.do.argv[1:] for s in plan.steps] == [args("198.18.1.11/32"), ("delete", *args("198.18.1.10/32"))]
    # the refresh job: only set contents, never new rules
    refreshed = backend.refresh_desired(MOVED, current)
    assert refreshed.rules == current.rules and backend.diff(current, refreshed).sets_only


def test_absent_deletes_exactly_its_rules_and_tagged_strays() -> None:
    stray = ADDED_OURS + "ufw allow out to 10.0.0.1 port 25 proto tcp comment 'protectnet_epns old'\n"
    backend = _ufw.UfwBackend(runner(stray))
    current = backend.read_current()
    plan = backend.plan(current, State())
    assert [s.do.argv[1:] for s in plan.steps] == [
        ("delete", *args("91.228.165.144/30")), ("delete", *args("198.18.1.10/32")),
        ("delete", *args("2001:db8:0:1::10/128", V6)),
        ("delete", "allow", "out", "to", "10.0.0.1", "port", "25", "proto", "tcp", "comment", "protectnet_epns old")]
    assert all(s.undo and s.undo[0].argv[1] != "delete" for s in plan.steps)


def test_ports_change_rebuilds_only_the_rules_with_the_old_ports() -> None:
    backend = _ufw.UfwBackend(runner(ADDED_OURS))
    current = backend.read_current()
    only_8883 = Policy((Group("epns", (8883,), ("91.228.165.144/30", "198.18.1.10/32"), ("2001:db8:0:1::10/128",)),))
    plan = backend.plan(current, backend.compute_desired(only_8883, current))
    argvs = [s.do.argv[1:] for s in plan.steps]
    assert argvs[0] == ("allow", "out", "to", "91.228.165.144/30", "port", "8883", "proto", "tcp", "comment",
                        "protectnet_epns epns ipv4 tcp 8883")
    assert len(argvs) == 6 and all(a[0] == "delete" for a in argvs[3:])


def test_detection_active_inactive_missing() -> None:
    found = _ufw.UfwBackend.detect(runner(status=STATUS_ACTIVE))
    assert found.usable and found.active and found.deny and found.owns
    assert found.detail == "ufw is active, default outgoing deny, the EPNS rules are in it"
    inactive = _ufw.UfwBackend.detect(runner(status=STATUS_INACTIVE))
    assert inactive.installed and not inactive.usable and "inactive" in inactive.detail
    with pytest.raises(FirewallError, match="backend ufw is installed but not usable: ufw is installed but inactive"):
        _ufw.UfwBackend(runner(status=STATUS_INACTIVE)).require_usable()
    assert not _ufw.UfwBackend.detect(FakeRunner({}, tools=())).installed


def test_persist_false_is_refused_before_any_change() -> None:
    backend = _ufw.UfwBackend(runner(), BackendOptions(persist=False))
    with pytest.raises(FirewallError, match="ufw has no runtime-only rules"):
        backend.compute_desired(POLICY, State())
    assert backend.persist(State()) == []


def test_engine_auto_picks_active_ufw_and_check_mode_only_reads() -> None:
    fake = runner()
    fake.tools |= {"nft"}
    fake.answers[("nft", "-j", "list", "ruleset")] = (0, '{"nftables": [{"metainfo": {"version": "1.0.6"}}]}', "")
    result = _engine.run(_engine.Request(spec=PolicySpec("198.18.1.10", (8883, 443))), fake, check_mode=True)
    assert result["backend"] == "ufw" and result["changed"] is True
    assert result["backend_reason"].startswith("auto: ufw is the running firewall daemon (ufw is active")
    assert {call[0] for call in fake.calls} <= READ_ONLY | {("nft", "-j", "list", "ruleset")}
    assert result["files"] == []


# -- ufw with IPv6 turned off (IPV6=no in /etc/default/ufw) --------------------------------------------------------
@pytest.fixture
def etc_default_ufw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> t.Callable[[str], Path]:
    """/etc/default/ufw in tmp_path: call it with the file's text."""
    defaults = tmp_path / "ufw"
    monkeypatch.setattr(_ufw, "DEFAULTS_FILE", str(defaults))

    def write(text: str) -> Path:
        defaults.write_text(text)
        return defaults
    return write


@pytest.mark.parametrize("line, on", [("IPV6=yes", True), ("IPV6=no", False), ('IPV6="no"', False),
                                      ("IPV6=NO", False), ("#IPV6=no", True)])
def test_ipv6_setting_is_read_from_etc_default_ufw(etc_default_ufw: t.Callable[[str], Path], line: str,
                                                   on: bool) -> None:
    etc_default_ufw(f"# /etc/default/ufw\nDEFAULT_OUTPUT_POLICY=\"ACCEPT\"\n{line}\n")
    assert _ufw.ipv6_enabled() is on


def test_ipv6_off_leaves_the_ipv6_part_unapplied_and_says_why(etc_default_ufw: t.Callable[[str], Path]) -> None:
    defaults = etc_default_ufw("IPV6=no\n")
    backend = _ufw.UfwBackend(runner())
    desired = backend.compute_desired(POLICY, backend.read_current())
    assert V6 not in desired.rules and V4 in desired.rules
    assert backend.not_applied == [{"family": "ipv6", "networks": ["2001:db8:0:1::10/128"], "reason": (
        f"IPv6 is turned off in ufw (IPV6=no in {defaults}): set IPV6=yes there and run ufw reload, then run "
        "again")}]
    assert any("IPv6 part" in w and "IPV6=no" in w for w in backend.warnings), backend.warnings
    assert all("2001:db8" not in " ".join(c.argv) for c in backend.plan(State(), desired).commands)


def test_ipv6_on_applies_both_families(etc_default_ufw: t.Callable[[str], Path]) -> None:
    etc_default_ufw("IPV6=yes\n")
    backend = _ufw.UfwBackend(runner())
    desired = backend.compute_desired(POLICY, backend.read_current())
    assert {V4, V6} <= set(desired.rules) and backend.not_applied == []


def test_engine_reports_what_was_not_applied(etc_default_ufw: t.Callable[[str], Path]) -> None:
    etc_default_ufw("IPV6=no\n")
    request = _engine.Request(backend="ufw", spec=PolicySpec(host="198.18.1.10", extra_destinations=(
        "2001:db8:0:1::10",), ports=(8883,)))
    result = _engine.run(request, runner(), check_mode=True)
    assert [n["family"] for n in result["not_applied"]] == ["ipv6"]
