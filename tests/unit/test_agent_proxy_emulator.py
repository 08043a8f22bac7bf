"""A failure at each step of a replacement, agent_proxy_policy run in-process (as Ansible runs it) against the
ESET PROTECT emulator (tests/emulator), On-Prem and cloud: no target is ever left uncovered, the rollback works
where it can, and a rerun finishes the job. Moved here from tests/integration/test_agent_proxy_policy.py (it is
module logic, and ansible-playbook start-up made it slow); test_agent_proxy_logic.py runs the same idea against
the small fake."""
from __future__ import annotations

import typing as t

import pytest
from _emulator import PASSWORD, Emulator, connection, control, emulator_fixture, group_uuid, reset, scanned
from _module_run import ModuleRun
from ansible_collections.protectnet.epns.plugins.modules import agent_proxy_policy

NAME = "EPNS via ESET Bridge"
SERVERS = "All/Linux/Servers"
LAPTOPS = "All/Windows/Laptops"

STEPS = {
    "create": {"method": "POST", "path": "/v2/policies"},
    "assign": {"method": "POST", "path": "/v2/policy-assignments", "nth": 1},
    "second assign": {"method": "POST", "path": "/v2/policy-assignments", "nth": 2},
    "rerank": {"method": "POST", "path": "/v2/policy-assignments/*:updateRanking"},
    "unassign old": {"method": "DELETE", "path": "/v2/policy-assignments/*"},
    "delete old": {"method": "DELETE", "path": "/v2/policies/*"},
}


emulator = emulator_fixture("onprem", "cloud")


@pytest.fixture
def emu(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """Reset, with another policy ranked first on both groups, so rank keeping is visible."""
    reset(emulator, monkeypatch)
    other = control(emulator, "POST", "seed", {"policies": [{"displayName": "Connection - site policy"}]})
    emulator.other = other["policies"][0]["uuid"]  # type: ignore[attr-defined]
    control(emulator, "POST", "seed", {"assignments": [
        {"policyUuid": emulator.other, "target": {"deviceGroupUuid": group_uuid(g)}}  # type: ignore[attr-defined]
        for g in (SERVERS, LAPTOPS)]})
    return emulator


@pytest.fixture
def run(run_module: ModuleRun) -> ModuleRun:
    return scanned(run_module)


def args(emu: Emulator, **extra: t.Any) -> dict:
    conn = connection(emu)
    conn.update(username="api-user", password=PASSWORD, name=NAME, proxy_host="bridge.example.lan",
                targets=[SERVERS, LAPTOPS])
    conn.update(extra)
    return conn


def mine(emu: Emulator) -> t.List[dict]:
    return [p for p in control(emu, "GET", "state")["policies"] if p.get("displayName") == NAME]


def ranks(emu: Emulator, group: str) -> t.List[t.Tuple[str, int]]:
    uuid = group_uuid(group)
    found = [a for a in control(emu, "GET", "state")["assignments"]
             if (a.get("target") or {}).get("deviceGroupUuid") == uuid]
    return [(a["policyUuid"], int(a["rank"])) for a in sorted(found, key=lambda a: int(a["rank"]))]


def covered(emu: Emulator) -> bool:
    snap = control(emu, "GET", "state")
    names = {p["uuid"]: p.get("displayName") for p in snap["policies"]}
    return all(any(names.get(p) == NAME for p, _r in ranks(emu, g)) for g in (SERVERS, LAPTOPS))


@pytest.mark.parametrize("step", list(STEPS))
def test_failure_at_each_replacement_step(emu: Emulator, run: ModuleRun, step: str) -> None:
    run(agent_proxy_policy, args(emu))
    (old,) = mine(emu)
    rule = dict(STEPS[step], action="status", status=500, times=0)
    if step in ("unassign old", "delete old"):
        rule["path"] = rule["path"].replace("*", "") + ("*" if step == "unassign old" else old["uuid"])
    control(emu, "POST", "faults", rule)
    failed = run(agent_proxy_policy, args(emu, proxy_host="new.example.lan", retries=0))
    assert failed.get("failed") is True and failed["failed_step"], failed
    assert covered(emu), (step, control(emu, "GET", "state")["assignments"])
    assert failed["error"]["status"] == 500 and failed["error"]["request_id"]
    assert failed["coverage"][1:] in failed["msg"]
    if step in ("assign", "second assign", "rerank"):
        assert failed["rollback"]["ok"] is True
    if step in ("unassign old", "delete old"):
        # the rollback would need the same failing calls; the new policy stays with the old one
        assert len(mine(emu)) == 2
    else:
        assert [p["uuid"] for p in mine(emu)] == [old["uuid"]]
    control(emu, "DELETE", "faults")
    healed = run(agent_proxy_policy, args(emu, proxy_host="new.example.lan"))
    assert healed["changed"] is True and healed.get("failed") is not True
    (new,) = mine(emu)
    assert ranks(emu, SERVERS) == [(emu.other, 1), (new["uuid"], 2)]  # type: ignore[attr-defined]
    assert ranks(emu, LAPTOPS) == [(emu.other, 1), (new["uuid"], 2)]  # type: ignore[attr-defined]
    assert run(agent_proxy_policy, args(emu, proxy_host="new.example.lan"))["changed"] is False


# -- a lost answer must not duplicate (issue 12) -------------------------------------------------------------
# Each POST of a replacement, made by the server and then answered 502 or with a dropped connection.
LOST = {
    "create": {"method": "POST", "path": "/v2/policies"},
    "assign": {"method": "POST", "path": "/v2/policy-assignments", "nth": 1},
    "second assign": {"method": "POST", "path": "/v2/policy-assignments", "nth": 2},
    "rerank": {"method": "POST", "path": "/v2/policy-assignments/*:updateRanking"},
}
LOSSES = {"502": {"action": "status", "status": 502}, "dropped": {"action": "close"}}


def assignments_of(emu: Emulator, policy_uuid: str) -> t.List[str]:
    snap = control(emu, "GET", "state")
    return sorted(a["target"]["deviceGroupUuid"] for a in snap["assignments"] if a["policyUuid"] == policy_uuid)


def assert_one_policy_one_assignment_per_target(emu: Emulator) -> dict:
    policies = mine(emu)
    assert len(policies) == 1, [p["uuid"] for p in policies]
    assert assignments_of(emu, policies[0]["uuid"]) == sorted(group_uuid(g) for g in (SERVERS, LAPTOPS))
    return policies[0]


@pytest.mark.parametrize("loss", list(LOSSES))
@pytest.mark.parametrize("step", list(LOST))
def test_a_lost_answer_to_a_replacement_post_creates_no_duplicate(emu: Emulator, run: ModuleRun, step: str,
                                                                  loss: str) -> None:
    run(agent_proxy_policy, args(emu))
    (old,) = mine(emu)
    control(emu, "POST", "faults", dict(LOST[step], commit=True, **LOSSES[loss]))
    result = run(agent_proxy_policy, args(emu, proxy_host="new.example.lan"))
    assert result.get("failed") is not True, result
    assert [f["fired"] for f in control(emu, "GET", "faults")["faults"]] == [1]  # the loss really happened
    new = assert_one_policy_one_assignment_per_target(emu)
    assert new["uuid"] != old["uuid"] and new["uuid"] == result["policy"]["uuid"]
    assert ranks(emu, SERVERS) == [(emu.other, 1), (new["uuid"], 2)]  # type: ignore[attr-defined]
    again = run(agent_proxy_policy, args(emu, proxy_host="new.example.lan"))
    assert again["changed"] is False, again["planned"]


def test_a_lost_create_whose_lookup_fails_says_what_may_exist_and_a_rerun_converges(emu: Emulator,
                                                                                     run: ModuleRun) -> None:
    run(agent_proxy_policy, args(emu))
    (old,) = mine(emu)
    control(emu, "POST", "faults", {"method": "POST", "path": "/v2/policies", "action": "status", "status": 502,
                                    "commit": True})
    # The run's first listing works; the lookup after the lost answer does not.
    control(emu, "POST", "faults", {"method": "GET", "path": "/v2/policies", "nth": 2, "times": 0, "status": 503})
    failed = run(agent_proxy_policy, args(emu, proxy_host="new.example.lan", retries=0))
    assert failed.get("failed") is True, failed
    (created,) = [p for p in mine(emu) if p["uuid"] != old["uuid"]]
    mark = failed["run_mark"]
    assert mark and mark in created["description"]
    assert "may have been created" in failed["msg"] and mark in failed["msg"]
    assert old["uuid"] in failed["coverage"] and "run again" in failed["coverage"]
    control(emu, "DELETE", "faults")
    healed = run(agent_proxy_policy, args(emu, proxy_host="new.example.lan"))
    assert healed.get("failed") is not True, healed
    assert assert_one_policy_one_assignment_per_target(emu)["uuid"] == created["uuid"]  # adopted, not made again
    assert run(agent_proxy_policy, args(emu, proxy_host="new.example.lan"))["changed"] is False


def test_a_create_that_failed_before_the_server_acted_is_made_once_after_looking(emu: Emulator,
                                                                                  run: ModuleRun) -> None:
    run(agent_proxy_policy, args(emu))
    control(emu, "POST", "faults", {"method": "POST", "path": "/v2/policy*", "action": "status", "status": 503,
                                    "times": 3})
    result = run(agent_proxy_policy, args(emu, proxy_host="new.example.lan"))
    assert result.get("failed") is not True, result
    assert_one_policy_one_assignment_per_target(emu)


@pytest.mark.parametrize("loss", list(LOSSES))
def test_a_lost_answer_to_an_unassign_is_not_a_failure(emu: Emulator, run: ModuleRun, loss: str) -> None:
    run(agent_proxy_policy, args(emu))
    (policy,) = mine(emu)
    control(emu, "POST", "faults", dict(method="DELETE", path="/v2/policy-assignments/*", commit=True,
                                        **LOSSES[loss]))
    result = run(agent_proxy_policy, args(emu, targets=[SERVERS]))  # the retry finds the assignment gone: 404
    assert result.get("failed") is not True, result.get("msg")
    assert assignments_of(emu, policy["uuid"]) == [group_uuid(SERVERS)]
    assert run(agent_proxy_policy, args(emu, targets=[SERVERS]))["changed"] is False
