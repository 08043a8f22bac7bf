"""agent_proxy_policy and eset_policy_info as Ansible runs them, against the loopback fake ESET PROTECT."""
from __future__ import annotations

import json
import typing as t

import pytest
from _fake_eset import PASSWORD, FakeEset, Fault
from _module_run import ModuleRun
from _policy_vectors import b64, format2
from ansible_collections.protectnet.epns.plugins.module_utils._eset_policy import _codec as codec
from ansible_collections.protectnet.epns.plugins.modules import agent_proxy_policy, eset_policy_info

NAME = "EPNS via bridge"


@pytest.fixture
def run(run_module: ModuleRun) -> ModuleRun:
    run_module.diff = True
    run_module.never_prints(PASSWORD)  # the secret scan every test in this file gets for free
    return run_module


@pytest.fixture(params=["on_prem", "cloud"])
def fake(request: pytest.FixtureRequest) -> t.Iterator[FakeEset]:
    with FakeEset(deployment=request.param, page_size=3) as running:
        yield running


def world(fake: FakeEset) -> t.Dict[str, str]:
    """Groups All/Servers and All/Branch/Linux, each with another policy assigned first (rank 1)."""
    servers = fake.add_group("Servers", fake.root)
    branch = fake.add_group("Branch", fake.root)
    linux = fake.add_group("Linux", branch)
    other = fake.add_policy("Someone else's policy", "eset.local.products.agent", b64(b'{"policy":{"format":"1"}}'))
    for group in (servers, linux):
        fake.add_assignment(other, group)
    for i in range(7):  # more policies than one page
        fake.add_policy(f"filler {i}", "x", b64(b'{"policy":{"format":"1"}}'))
    return {"servers": servers, "linux": linux, "other": other}


def mine(fake: FakeEset) -> t.List[dict]:
    return [p for p in fake.policies.values() if p["displayName"] == NAME]


def settings_of(policy: dict) -> dict:
    return codec.flatten(codec.decode(policy["features"][0]["configuration"]["data"]).sections())


def args(fake: FakeEset, **extra: t.Any) -> dict:
    base = {"name": NAME, "proxy_host": "bridge.lab", "proxy_port": 3128, "targets": ["All/Servers", "Branch/Linux"]}
    base.update(extra)
    return fake.params(**base)


def covered(fake: FakeEset, groups: t.Iterable[str]) -> bool:
    names = {uuid: p["displayName"] for uuid, p in fake.policies.items()}
    return all(any(names.get(policy) == NAME for policy, _rank in fake.ranks(g)) for g in groups)


def test_full_lifecycle(fake: FakeEset, run: ModuleRun) -> None:
    w = world(fake)
    first = run(agent_proxy_policy, args(fake))
    assert first["changed"] is True and not first["replaced"], first
    (policy,) = mine(fake)
    assert settings_of(policy)["agent/settings/HttpProxy/Global/Host"] == "bridge.lab"
    assert [p for p, _r in fake.ranks(w["servers"])] == [w["other"], policy["uuid"]]
    assert first["diff"]["before"] == {"policies": [], "assignments": []}
    assert first["diff"]["after"]["policies"][0]["settings"]["agent/settings/HttpProxy/Global/Port"] == "3128"

    again = run(agent_proxy_policy, args(fake))
    assert again["changed"] is False and again["planned"] == [] and again["actions"] == []
    assert again["diff"]["before"] == again["diff"]["after"]

    # our policy first on Servers, second on Linux: a replacement must keep both ranks
    fake.requests.clear()
    ours = [a for a in fake.assignments.values() if a["policyUuid"] == policy["uuid"]]
    servers_assignment = next(a for a in ours if a["target"]["deviceGroupUuid"] == w["servers"])
    fake._renumber(servers_assignment["target"], [servers_assignment["uuid"]] + [
        u for u in fake._target_order(servers_assignment["target"]) if u != servers_assignment["uuid"]])
    changed = run(agent_proxy_policy, args(fake, proxy_host="bridge2.lab", proxy_port=8080))
    assert changed["changed"] is True and changed["replaced"] is True
    assert changed["removed_policies"] == [policy["uuid"]]
    (new,) = mine(fake)
    assert new["uuid"] != policy["uuid"] and policy["uuid"] not in fake.policies
    assert settings_of(new)["agent/settings/HttpProxy/Global/Host"] == "bridge2.lab"
    assert fake.ranks(w["servers"]) == [(new["uuid"], 1), (w["other"], 2)]
    assert fake.ranks(w["linux"]) == [(w["other"], 1), (new["uuid"], 2)]
    writes = [(r.method, r.path.split("/")[2]) for r in fake.writes()]
    assert writes.index(("POST", "policies")) < writes.index(("DELETE", "policies"))  # new first, old last
    before = changed["diff"]["before"]["policies"][0]["settings"]
    after = changed["diff"]["after"]["policies"][0]["settings"]
    assert before["agent/settings/HttpProxy/Global/Host"] == "bridge.lab"
    assert after["agent/settings/HttpProxy/Global/Host"] == "bridge2.lab"
    assert run(agent_proxy_policy, args(fake, proxy_host="bridge2.lab", proxy_port=8080))["changed"] is False

    gone = run(agent_proxy_policy, args(fake, state="absent"))
    assert gone["changed"] is True and mine(fake) == []
    assert fake.ranks(w["servers"]) == [(w["other"], 1)]
    assert run(agent_proxy_policy, args(fake, state="absent"))["changed"] is False


def test_before_and_after_show_the_managed_policies_around_the_run(fake: FakeEset, run: ModuleRun) -> None:
    world(fake)
    first = run(agent_proxy_policy, args(fake))
    assert first["before"] == [] and first["after"] == [first["policy"]]
    (created,) = mine(fake)
    assert first["policy"] == {"uuid": created["uuid"], "name": NAME, "product": "eset.local.products.agent",
                              "template_uuid": None, "format": "1"}

    preview = run(agent_proxy_policy, args(fake, proxy_port=8080), check=True)
    assert preview["before"] == first["after"] and preview["after"][0]["uuid"] == "(new policy)"

    replaced = run(agent_proxy_policy, args(fake, proxy_port=8080))
    (new,) = mine(fake)
    assert replaced["before"] == first["after"] and replaced["after"] == [replaced["policy"]]
    assert replaced["policy"]["uuid"] == new["uuid"] != created["uuid"]

    gone = run(agent_proxy_policy, args(fake, state="absent"))
    assert gone["before"] == replaced["after"] and gone["after"] == [] and gone["policy"] is None
    assert run(agent_proxy_policy, args(fake, state="absent"))["before"] == []


def test_check_mode_sends_no_write_request(fake: FakeEset, run: ModuleRun) -> None:
    world(fake)
    fake.requests.clear()
    predicted = run(agent_proxy_policy, args(fake), check=True)
    assert predicted["changed"] is True and fake.writes() == [] and mine(fake) == []
    assert predicted["planned"][0] == "create policy 'EPNS via bridge'" and predicted["actions"] == []
    assert predicted["diff"]["after"]["assignments"][0]["policy"] == "(new policy)"
    run(agent_proxy_policy, args(fake))
    fake.requests.clear()
    change = run(agent_proxy_policy, args(fake, services=["replication"], fallback_direct=False), check=True)
    assert change["changed"] is True and change["replaced"] is True and fake.writes() == []
    assert run(agent_proxy_policy, args(fake, state="absent"), check=True)["changed"] is True
    assert fake.writes() == [] and len(mine(fake)) == 1


def test_a_map_of_ones_own_is_confirmed_only_when_it_says_so(fake: FakeEset, run: ModuleRun) -> None:
    own = {"product": "eset.local.products.agent"}
    assert run(agent_proxy_policy, args(fake, settings_map=own), check=True)["map_confirmed"] is False
    confirmed = run(agent_proxy_policy, args(fake, settings_map=dict(own, confirmed=True)), check=True)
    assert confirmed["map_confirmed"] is True and not any("NOT confirmed" in w for w in run.warnings)


def test_per_service_settings(fake: FakeEset, run: ModuleRun) -> None:
    result = run(agent_proxy_policy, args(fake, targets=None, services=["replication"], fallback_direct=False))
    assert result["map_confirmed"] is False and any("NOT confirmed" in w for w in run.warnings)
    flat = settings_of(mine(fake)[0])
    assert flat["agent/settings/HttpProxy/ProxyConfigurationType"] == "1"
    assert flat["agent/settings/HttpProxy/Replication/UseProxy"] == "1"
    assert flat["agent/settings/HttpProxy/Replication/Host"] == "bridge.lab"
    assert flat["agent/settings/HttpProxy/EsetServices/UseProxy"] == "0"
    assert "agent/settings/HttpProxy/EsetServices/Host" not in flat
    assert flat["agent/settings/HttpProxy/UseDirectConnectionIfProxyUnavailable"] == "0"


def test_targets_and_rank_are_desired_state(fake: FakeEset, run: ModuleRun) -> None:
    w = world(fake)
    run(agent_proxy_policy, args(fake))
    (policy,) = mine(fake)
    moved = run(agent_proxy_policy, args(fake, targets=[w["linux"]], rank=1))
    assert moved["changed"] and not moved["replaced"]
    assert fake.ranks(w["servers"]) == [(w["other"], 1)]
    assert fake.ranks(w["linux"]) == [(policy["uuid"], 1), (w["other"], 2)]
    assert run(agent_proxy_policy, args(fake, targets=[w["linux"]], rank=1))["changed"] is False
    # without targets, the policy keeps what it has, also through a replacement
    run(agent_proxy_policy, args(fake, targets=None, proxy_host="other.lab"))
    (new,) = mine(fake)
    assert fake.ranks(w["linux"]) == [(new["uuid"], 1), (w["other"], 2)]


STEPS = [  # (step, fault factory): a Fault counts down, so each test gets its own
    ("create", lambda: Fault("POST", "/v2/policies", 400, body='{"message":"injected"}')),
    ("assign", lambda: Fault("POST", "/v2/policy-assignments", 400, body='{"message":"injected"}')),
    ("second assign", lambda: None),
    ("rerank", lambda: Fault("POST", r"/v2/policy-assignments/.*:updateRanking", 400)),
    ("delete old", lambda: None),
]


@pytest.mark.parametrize("step", [s for s, _f in STEPS])
def test_a_failure_at_each_step_never_leaves_a_target_uncovered(fake: FakeEset, run: ModuleRun, step: str) -> None:
    w = world(fake)
    groups = [w["servers"], w["linux"]]
    run(agent_proxy_policy, args(fake))
    (old,) = mine(fake)
    fault = dict(STEPS)[step]()
    if step == "delete old":
        fault = Fault("DELETE", "/v2/policies/" + old["uuid"], 400, body='{"message":"in use"}')
    if step == "second assign":
        # let the first assignment through, then fail every retry of the second
        original_route = fake.route
        count = {"n": 0}

        def route(method: str, path: str, *rest: t.Any) -> t.Any:
            if method == "POST" and path == "/v2/policy-assignments":
                count["n"] += 1
                if count["n"] >= 2:
                    return 503, "busy", {}
            return original_route(method, path, *rest)

        fake.route = route  # type: ignore[method-assign]
    else:
        fake.faults.append(fault)
    failed = run(agent_proxy_policy, args(fake, proxy_host="new.lab", retries=1))
    assert failed["failed"] is True and failed["failed_step"], failed
    assert covered(fake, groups), (step, fake.assignments)
    assert failed["coverage"][1:] in failed["msg"] and failed["not_done"] is not None
    if step in ("assign", "second assign", "rerank"):
        assert failed["rollback"]["ok"] is True and [p["uuid"] for p in mine(fake)] == [old["uuid"]]
        assert "Rolled back" in failed["msg"]
    elif step == "create":
        assert failed["rollback"] is None and [p["uuid"] for p in mine(fake)] == [old["uuid"]]
    else:
        assert len(mine(fake)) == 2 and "still there" in failed["msg"]
    assert failed["error"]["request_id"]
    if step == "second assign":
        fake.route = original_route  # type: ignore[method-assign]
    fake.faults.clear()
    healed = run(agent_proxy_policy, args(fake, proxy_host="new.lab"))
    assert healed["changed"] is True
    (new,) = mine(fake)
    assert settings_of(new)["agent/settings/HttpProxy/Global/Host"] == "new.lab"
    assert [fake.ranks(g) for g in groups] == [[(w["other"], 1), (new["uuid"], 2)]] * 2
    assert run(agent_proxy_policy, args(fake, proxy_host="new.lab"))["changed"] is False


def test_a_failed_rollback_keeps_both_policies_and_a_rerun_finishes(fake: FakeEset, run: ModuleRun) -> None:
    w = world(fake)
    run(agent_proxy_policy, args(fake))
    (old,) = mine(fake)
    fake.faults.append(Fault("POST", r"/v2/policy-assignments/.*:updateRanking", 400))
    fake.faults.append(Fault("DELETE", r"/v2/policies/(?!{}).*".format(old["uuid"]), 500, times=10))
    failed = run(agent_proxy_policy, args(fake, proxy_host="new.lab", retries=0))
    assert failed["rollback"]["ok"] is False and len(mine(fake)) == 2
    assert "could not be deleted again" in failed["msg"] and covered(fake, [w["servers"], w["linux"]])
    fake.faults.clear()
    run(agent_proxy_policy, args(fake, proxy_host="new.lab"))
    (new,) = mine(fake)
    assert new["uuid"] != old["uuid"]
    for group in (w["servers"], w["linux"]):
        assert fake.ranks(group) == [(w["other"], 1), (new["uuid"], 2)]


def test_expired_token_and_429_storm_mid_run(fake: FakeEset, run: ModuleRun) -> None:
    world(fake)
    fake.faults.append(Fault("GET", "/v1/device_groups", 401))
    fake.faults.append(Fault("POST", "/v2/policies", 429, times=3, headers={"Retry-After": "0"}))
    fake.faults.append(Fault("POST", "/v2/policy-assignments", 429, times=2, headers={"Retry-After": "0"}))
    result = run(agent_proxy_policy, args(fake))
    assert result["changed"] and result["api"]["reauthentications"] == 1 and result["api"]["retries"] == 5
    assert len(mine(fake)) == 1


def test_202_is_collected_during_a_run(run: ModuleRun) -> None:
    with FakeEset(deployment="cloud") as fake:
        world(fake)
        fake.answer_202 += ["/v2/policies", "/v2/policy-assignments"]
        result = run(agent_proxy_policy, args(fake))
        assert result["changed"] and result["api"]["collected_202"] == 2 and len(mine(fake)) == 1


def test_template_policy_is_cloned_with_only_mapped_values_changed(fake: FakeEset, run: ModuleRun) -> None:
    world(fake)
    raw = format2(product="agent_vector")
    template = fake.add_policy("Agent proxy (console)", "eset.real.agent.id", b64(raw))
    settings_map = {"section": "agent_vector", "proxy_mode": {"path": "Settings/Proxy/Mode"},
                    "fallback_direct": {"path": "Settings/Proxy/Direct"},
                    "services": {"global": {"use": {"path": "Settings/Proxy/Use", "ce_type": 6},
                                            "host": {"path": "Settings/Proxy/Host"},
                                            "port": {"path": "Settings/Proxy/Port"}}}}
    result = run(agent_proxy_policy, args(fake, template_policy="Agent proxy (console)", settings_map=settings_map))
    assert result["policy"]["template_uuid"] == template and result["policy"]["product"] == "eset.real.agent.id"
    (policy,) = mine(fake)
    conf = policy["features"][0]["configuration"]
    assert conf["product"] == "eset.real.agent.id"
    new = codec.decode(conf["data"])
    old = codec.PolicyData(raw)
    for a, b in zip(old.members, new.members):
        if a.name != "agent_vector.lzma":
            assert (a.header, a.data) == (b.header, b.data), a.name
    flat_new, flat_old = codec.flatten(new.sections()), codec.flatten(old.sections())
    assert {k: v for k, v in flat_new.items() if "/Proxy/" not in k} == flat_old
    assert flat_new["agent_vector/Settings/Proxy/Host"] == "bridge.lab"
    assert any("had no node" in w for w in run.warnings)
    again = run(agent_proxy_policy, args(fake, template_policy=template, settings_map=settings_map))
    assert again["changed"] is False


def test_settings_map_file(fake: FakeEset, run: ModuleRun, tmp_path: t.Any) -> None:
    path = tmp_path / "map.yml"
    path.write_text("product: my.agent\nsection: agentx\n")
    result = run(agent_proxy_policy, args(fake, targets=None, settings_map_file=str(path)))
    assert result["policy"]["product"] == "my.agent"
    assert "agentx" in codec.decode(mine(fake)[0]["features"][0]["configuration"]["data"]).sections()
    assert not any("NOT confirmed" in w for w in run.warnings)


BAD_INPUT = [
    ({"proxy_username": "agent"}, "EPNS) and agent replication cannot use a proxy that requires authentication"),
    ({"proxy_password": "Proxy-Secret-99"}, "cannot use a proxy that requires authentication"),
    ({"proxy_host": "agent:Proxy-Secret-99@bridge.lab"}, "requires authentication"),
    ({"proxy_host": None}, "proxy_host is missing"),
    ({"proxy_host": "http://bridge.lab"}, "without a scheme"),
    ({"proxy_host": "bridge.lab:3128"}, "set proxy_port"),
    ({"proxy_host": "bridge.lab/x"}, "without a path"),
    ({"proxy_host": "bad host!"}, "not a valid host name"),
    ({"proxy_port": 0}, "proxy_port: 0 is not a TCP port"),
    ({"proxy_port": 70000}, "proxy_port: 70000"),
    ({"proxy_port": "many"}, "proxy_port"),
    ({"services": []}, "at least one service"),
    ({"services": ["all", "replication"]}, "all cannot be combined"),
    ({"services": ["epns"]}, "unknown epns"),
    ({"rank": 0}, "rank: 0 is not allowed"),
    ({"targets": [""]}, "empty entries"),
    ({"targets": ["All/Nowhere"]}, "no device group has the name path 'All/Nowhere'"),
    ({"targets": ["00000000-0000-0000-0000-000000000000"]}, "no device group has uuid"),
    ({"state": "gone"}, "state"),
    ({"name": "  "}, "name must not be empty"),
    ({"fallback_direct": "perhaps"}, "fallback_direct"),
    ({"template_policy": "No such template"}, "no policy has this uuid or name"),
    ({"settings_map": {"nodes": {}}}, "unknown keys nodes (accepted: confirmed, fallback_direct, flags, product,"),
    ({"settings_map": {"confirmed": "yes"}}, "confirmed must be true or false, got 'yes'"),
    ({"settings_map": {"proxy_mode": {"path": ""}}}, "proxy_mode.path must be a non-empty node path"),
    ({"settings_map": {"proxy_mode": {"values": {"global": 0}}}}, "map exactly global and per_service"),
    ({"settings_map": {"services": {"all": {}}}}, "'all' is reserved"),
    ({"settings_map": {"services": {"x": {"use": {"path": "a"}}}}}, "must have exactly use, host and port"),
    ({"settings_map": {"fallback_direct": {"path": "settings/HttpProxy/Global/Host"}}}, "use the same path"),
    ({"settings_map": {"product": ""}}, "product must be a non-empty string"),
    ({"settings_map_file": "/nonexistent/map.yml"}, "settings_map_file /nonexistent/map.yml"),
    ({"deployment": "cloud", "region": None, "api_urls": None}, "needs region"),
    ({"region": "mars"}, "region"),
    ({"api_urls": {"policy": "https://x"}}, "unknown service 'policy'"),
    ({"username": None}, "username"),
    ({"bogus": 1}, "bogus"),
]


@pytest.mark.parametrize(("extra", "words"), BAD_INPUT, ids=[w[:40] for _e, w in BAD_INPUT])
def test_bad_input_fails_cleanly(fake: FakeEset, run: ModuleRun, extra: dict, words: str) -> None:
    world(fake)
    fake.requests.clear()
    params = args(fake, **extra)
    params = {k: v for k, v in params.items() if v is not None}
    result = run(agent_proxy_policy, params)
    assert result["failed"] is True and words in result["msg"], result["msg"]
    assert "Traceback" not in json.dumps(result) and "Proxy-Secret-99" not in json.dumps(result)
    assert fake.writes() == []


def test_builtin_policy_name_is_refused(fake: FakeEset, run: ModuleRun) -> None:
    fake.add_policy(NAME, "eset.local.products.agent", b64(b'{"policy":{"format":"1"}}'), built_in=True)
    result = run(agent_proxy_policy, args(fake, targets=None))
    assert result["failed"] and "built-in policy" in result["msg"] and fake.writes() == []


def test_nothing_secret_in_any_output(fake: FakeEset, run: ModuleRun) -> None:
    world(fake)
    outputs = [run(agent_proxy_policy, args(fake), diff=True),
               run(agent_proxy_policy, args(fake, proxy_host="b.lab"), check=True),
               run(eset_policy_info, fake.params(name=NAME))]
    fake.faults.append(Fault("POST", "/v2/policies", 400, body=json.dumps({"echo": PASSWORD})))
    outputs.append(run(agent_proxy_policy, args(fake, proxy_host="c.lab")))
    tokens = {r.headers.get("authorization", "")[7:] for r in fake.requests} - {""}
    text = json.dumps(outputs) + "\n".join(run.outputs)
    assert tokens and not any(token in text for token in tokens)
    assert PASSWORD not in text
    for recorded in fake.requests:  # the password only ever goes to the login call
        if recorded.path not in ("/GetTokens", "/oauth/token"):
            assert PASSWORD not in recorded.body and PASSWORD not in json.dumps(recorded.headers)


def test_credentials_from_environment(fake: FakeEset, run: ModuleRun, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESET_PROTECT_USERNAME", fake.username)
    monkeypatch.setenv("ESET_PROTECT_PASSWORD", fake.password)
    monkeypatch.setenv("ESET_PROTECT_DEPLOYMENT", fake.deployment)
    params = {"name": NAME, "proxy_host": "bridge.lab", "api_urls": {"default": fake.url}}
    result = run(agent_proxy_policy, params)
    assert result["changed"] is True and result["api"]["deployment"] == fake.deployment


def test_policy_info(fake: FakeEset, run: ModuleRun) -> None:
    w = world(fake)
    raw = format2()
    nested = b'{"policy":{"format":1}}\n' + __import__("_policy_vectors").ar(
        [("originalPolicies.lzma", __import__("_policy_vectors").lzma_alone(b64(raw).encode()))])
    shown = fake.add_policy("Agent (console)", "agent.id", b64(raw))
    fake.add_policy("Installer", "agent.id", b64(nested))
    fake.add_policy("Broken", "agent.id", "%%%")
    listing = run(eset_policy_info, fake.params())
    assert len(listing["policies"]) == 11 and listing["changed"] is False
    assert "settings" not in listing["policies"][0]
    one = run(eset_policy_info, fake.params(name="Agent (console)"))["policies"]
    assert one[0]["uuid"] == shown and one[0]["format"] == "2" and one[0]["product"] == "agent.id"
    assert one[0]["settings_flat"]["agent_vector/Settings/Logging/Verbosity"] == "3"
    assert "agent_vector" in one[0]["settings"]
    by_uuid = run(eset_policy_info, fake.params(uuid=w["other"]))["policies"][0]
    assert [a["target"] for a in by_uuid["assignments"]] == ["group All/Servers ({})".format(w["servers"]),
                                                            "group All/Branch/Linux ({})".format(w["linux"])]
    inner = run(eset_policy_info, fake.params(name="Installer", include_nested=True))["policies"][0]
    assert inner["nested"][0]["format"] == "2"
    broken = run(eset_policy_info, fake.params(name="Broken"))["policies"][0]
    assert "not valid base64" in broken["decode_error"]
    assert run(eset_policy_info, fake.params(uuid="00000000-0000-0000-0000-000000000000"))["policies"] == []
    assert run(eset_policy_info, fake.params(uuid="x", name="y"))["failed"] is True
