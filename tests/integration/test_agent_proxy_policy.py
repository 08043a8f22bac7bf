"""agent_proxy_policy, eset_policy_info and the epns_agent_proxy role through real ansible-playbook runs against
the ESET PROTECT emulator (tests/emulator), On-Prem and cloud: lifecycle, check mode, token expiry, 429 storms,
paging, a failure at every replacement step, bad input, and a scan of every output for the test password."""
from __future__ import annotations

import contextlib
import json
import os
import ssl
import subprocess
import sys
import typing as t
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from emulator import DEFAULT_USERS, Emulator, group_uuid  # noqa: E402

BIN = Path(sys.executable).parent
PLAYBOOK = Path(__file__).resolve().parent / "playbooks" / "agent_proxy_policy.yml"
PASSWORD = DEFAULT_USERS["api-user"]
NAME = "EPNS via ESET Bridge"
SERVERS = "All/Linux/Servers"
LAPTOPS = "All/Windows/Laptops"
AUTH_PATHS = ("/GetTokens", "/oauth/token")
OUTPUTS: t.List[str] = []  # every stdout, stderr and result text of this module, scanned at the end


def control(emu: Emulator, method: str, path: str, body: t.Any = None) -> t.Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(emu.url + "/_emulator/" + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, context=ssl.create_default_context(cafile=emu.ca_path)) as answer:
        return json.loads(answer.read() or b"{}")


def connection(emu: Emulator) -> t.Dict[str, t.Any]:
    if emu.deployment == "onprem":
        return {"deployment": "on_prem", "api_urls": {"default": emu.url}, "ca_path": emu.ca_path}
    urls = emu.base_urls
    return {"deployment": "cloud", "ca_path": emu.ca_path,
            "api_urls": {"business-account": urls["business-account.iam"],
                         "policy-management": urls["policy-management"],
                         "device-management": urls["device-management"]}}


def env() -> t.Dict[str, str]:
    out = dict(os.environ)
    out.update({"ANSIBLE_COLLECTIONS_PATH": str(REPO / ".build" / "collections"),
                "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false", "ANSIBLE_LOCALHOST_WARNING": "false",
                "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false", "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_PYTHON_INTERPRETER": sys.executable, "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost", "ESET_PROTECT_USERNAME": "api-user",
                "ESET_PROTECT_PASSWORD": PASSWORD,
                "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"})
    return out


def playbook(path: Path, extra_vars: t.Mapping[str, t.Any], *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                           "-e", json.dumps(dict(extra_vars)), *args, str(path)],
                          env=env(), capture_output=True, text=True, timeout=300, check=False, cwd=REPO)
    OUTPUTS.extend([done.stdout, done.stderr])
    return done


def apply(emu: Emulator, tmp_path: Path, *args: str, info: t.Optional[dict] = None, **options: t.Any) -> dict:
    app = dict(connection(emu))
    app.update({"name": NAME, "proxy_host": "bridge.example.lan", "targets": [SERVERS, LAPTOPS]})
    app.update(options)
    app = {k: v for k, v in app.items() if v is not None}
    result_file = tmp_path / f"result-{len(OUTPUTS)}.json"
    extra: t.Dict[str, t.Any] = {"app": app, "result_file": str(result_file)}
    if info is not None:
        extra["info"] = info
    done = playbook(PLAYBOOK, extra, *args)
    assert result_file.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    text = result_file.read_text()
    OUTPUTS.append(text)
    # what the server saw, less the login calls (the only ones that carry the password, by design)
    OUTPUTS.append(json.dumps([r for r in control(emu, "GET", "requests")["requests"]
                               if r.get("api_path") not in AUTH_PATHS]))
    result = t.cast(dict, json.loads(text))
    result["_stdout"] = done.stdout
    return result


def state(emu: Emulator) -> dict:
    return t.cast(dict, control(emu, "GET", "state"))


def mine(emu: Emulator) -> t.List[dict]:
    return [p for p in state(emu)["policies"] if p.get("displayName") == NAME]


def ranks(emu: Emulator, group: str) -> t.List[t.Tuple[str, int]]:
    snap = state(emu)
    uuid = group_uuid(group)
    found = [a for a in snap["assignments"] if (a.get("target") or {}).get("deviceGroupUuid") == uuid]
    return [(a["policyUuid"], int(a["rank"])) for a in sorted(found, key=lambda a: int(a["rank"]))]


def writes(emu: Emulator) -> t.List[dict]:
    return [r for r in control(emu, "GET", "requests")["requests"]
            if r["method"] != "GET" and r.get("api_path") not in AUTH_PATHS and "/_emulator/" not in r["path"]]


def covered(emu: Emulator) -> bool:
    names = {p["uuid"]: p.get("displayName") for p in state(emu)["policies"]}
    return all(any(names.get(p) == NAME for p, _r in ranks(emu, g)) for g in (SERVERS, LAPTOPS))


@pytest.fixture(params=["onprem", "cloud"])
def emu(request: pytest.FixtureRequest) -> t.Iterator[Emulator]:
    with seeded(request.param) as running:
        yield running


@contextlib.contextmanager
def seeded(deployment: str, **options: t.Any) -> t.Iterator[Emulator]:
    with Emulator(deployment, **options) as running:
        # another policy ranked first on both groups, so rank keeping is visible
        other = control(running, "POST", "seed", {"policies": [{"displayName": "Connection - site policy"}]})
        uuid = other["policies"][0]["uuid"]
        control(running, "POST", "seed", {"assignments": [
            {"policyUuid": uuid, "target": {"deviceGroupUuid": group_uuid(g)}} for g in (SERVERS, LAPTOPS)]})
        running.other = uuid  # type: ignore[attr-defined]
        yield running


def test_lifecycle_check_mode_and_idempotence(emu: Emulator, tmp_path: Path) -> None:
    control(emu, "DELETE", "requests")
    predicted = apply(emu, tmp_path, "--check", "--diff")
    assert predicted["changed"] is True and writes(emu) == [] and mine(emu) == []
    assert "bridge.example.lan" in predicted["_stdout"]  # the diff is shown

    created = apply(emu, tmp_path, "--diff")
    assert created["changed"] is True and "changed=1" in created["_stdout"]
    (policy,) = mine(emu)
    assert ranks(emu, SERVERS) == [(emu.other, 1), (policy["uuid"], 2)]  # type: ignore[attr-defined]

    again = apply(emu, tmp_path, "--diff")
    assert again["changed"] is False and "changed=0" in again["_stdout"]

    control(emu, "DELETE", "requests")
    preview = apply(emu, tmp_path, "--check", "--diff", proxy_host="bridge2.example.lan", proxy_port=8080)
    assert preview["changed"] is True and preview["replaced"] is True and writes(emu) == []

    # ours first on Servers: the replacement must keep rank 1 there and rank 2 on Laptops
    apply(emu, tmp_path, targets=[SERVERS, LAPTOPS], rank=None)
    replaced = apply(emu, tmp_path, "--diff", proxy_host="bridge2.example.lan", proxy_port=8080)
    assert replaced["replaced"] is True and replaced["removed_policies"] == [policy["uuid"]]
    (new,) = mine(emu)
    assert ranks(emu, SERVERS)[1][0] == new["uuid"] and ranks(emu, LAPTOPS)[1][0] == new["uuid"]
    moved = apply(emu, tmp_path, proxy_host="bridge2.example.lan", proxy_port=8080, rank=1)
    assert moved["changed"] is True and not moved["replaced"]
    assert ranks(emu, SERVERS)[0] == (new["uuid"], 1) and ranks(emu, LAPTOPS)[0] == (new["uuid"], 1)
    newer = apply(emu, tmp_path, proxy_host="bridge3.example.lan", proxy_port=8080)  # rank kept: 1
    (third,) = mine(emu)
    assert newer["replaced"] and ranks(emu, SERVERS)[0] == (third["uuid"], 1)
    assert ranks(emu, LAPTOPS)[0] == (third["uuid"], 1)
    assert apply(emu, tmp_path, proxy_host="bridge3.example.lan", proxy_port=8080)["changed"] is False

    gone = apply(emu, tmp_path, state="absent")
    assert gone["changed"] is True and mine(emu) == []
    assert ranks(emu, SERVERS) == [(emu.other, 1)]  # type: ignore[attr-defined]
    assert apply(emu, tmp_path, state="absent")["changed"] is False


def test_protobuf_json_variants_stay_idempotent(tmp_path: Path) -> None:
    """A gateway may send int64 as strings and zero values explicitly; ranks and paging must not care."""
    with seeded("cloud", int64_as_string=True, emit_unpopulated=True) as emu:
        apply(emu, tmp_path, rank=1)
        (policy,) = mine(emu)
        assert ranks(emu, SERVERS)[0] == (policy["uuid"], 1)
        assert apply(emu, tmp_path, rank=1)["changed"] is False
        replaced = apply(emu, tmp_path, proxy_host="other.example.lan")
        assert replaced["replaced"] and ranks(emu, SERVERS)[0][1] == 1
        assert apply(emu, tmp_path, proxy_host="other.example.lan")["changed"] is False


def test_expired_token_429_storm_and_paging(emu: Emulator, tmp_path: Path) -> None:
    control(emu, "POST", "seed", {"policies": [{"displayName": f"filler {i}"} for i in range(120)]})
    control(emu, "POST", "faults", {"action": "status", "method": "GET", "path": "/v1/device_groups*",
                                    "status": 401, "times": 1})
    control(emu, "POST", "faults", {"action": "status", "path": "/v2/*", "status": 429, "nth": 3, "times": 6,
                                    "headers": {"Retry-After": "0"}})
    control(emu, "POST", "faults", {"action": "accepted", "method": "POST", "path": "/v2/policies", "times": 1,
                                    "pending": 1})
    result = apply(emu, tmp_path, retries=8)
    assert result["changed"] is True, result.get("msg")
    assert result["api"]["reauthentications"] == 1 and result["api"]["retries"] >= 6
    assert result["api"]["collected_202"] >= 1 and len(mine(emu)) == 1
    pages = [r for r in control(emu, "GET", "requests")["requests"]
             if r.get("api_path") == "/v2/policies" and r["method"] == "GET" and r["status"] == 200]
    assert len(pages) >= 2  # 127 policies do not fit one default page (100 On-Prem, 50 cloud)
    control(emu, "DELETE", "faults")
    control(emu, "POST", "tokens:expire", {"refresh": True})  # every token, refresh tokens too, is gone
    assert apply(emu, tmp_path)["changed"] is False


STEPS = {
    "create": {"method": "POST", "path": "/v2/policies"},
    "assign": {"method": "POST", "path": "/v2/policy-assignments", "nth": 1},
    "second assign": {"method": "POST", "path": "/v2/policy-assignments", "nth": 2},
    "rerank": {"method": "POST", "path": "/v2/policy-assignments/*:updateRanking"},
    "unassign old": {"method": "DELETE", "path": "/v2/policy-assignments/*"},
    "delete old": {"method": "DELETE", "path": "/v2/policies/*"},
}


# Every step On-Prem; the cloud shares the code path, so two steps there keep the run short.
@pytest.mark.parametrize(("deployment", "step"), [("onprem", s) for s in STEPS] +
                         [("cloud", "second assign"), ("cloud", "delete old")])
def test_failure_at_each_replacement_step(deployment: str, step: str, tmp_path: Path) -> None:
    with seeded(deployment) as emu:
        _failure_at(emu, tmp_path, step)


def _failure_at(emu: Emulator, tmp_path: Path, step: str) -> None:
    apply(emu, tmp_path)
    (old,) = mine(emu)
    rule = dict(STEPS[step], action="status", status=500, times=0)
    if step in ("unassign old", "delete old"):
        rule["path"] = rule["path"].replace("*", "") + ("*" if step == "unassign old" else old["uuid"])
    control(emu, "POST", "faults", rule)
    failed = apply(emu, tmp_path, proxy_host="new.example.lan", retries=0)
    assert failed.get("failed") is True and failed["failed_step"], failed
    assert covered(emu), (step, state(emu)["assignments"])
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
    healed = apply(emu, tmp_path, proxy_host="new.example.lan")
    assert healed["changed"] is True and healed.get("failed") is not True
    (new,) = mine(emu)
    assert ranks(emu, SERVERS) == [(emu.other, 1), (new["uuid"], 2)]  # type: ignore[attr-defined]
    assert ranks(emu, LAPTOPS) == [(emu.other, 1), (new["uuid"], 2)]  # type: ignore[attr-defined]
    assert apply(emu, tmp_path, proxy_host="new.example.lan")["changed"] is False


def test_learn_node_names_then_clone_a_template(emu: Emulator, tmp_path: Path) -> None:
    template = "Agent - Use HTTP proxy (ESET Bridge)"
    info = apply(emu, tmp_path, info={"name": template})
    (shown,) = info["policies"]
    flat = shown["settings_flat"]
    host_path = next(p for p in flat if p.endswith("Hostname"))
    section, rest = host_path.split("/", 1)
    base = rest.rsplit("/", 2)[0]  # e.g. Settings/ProxyConfiguration
    global_base = rest.rsplit("/", 1)[0]
    settings_map = {"product": shown["product"], "section": section,
                    "proxy_mode": {"path": base + "/ProxyConfigurationType", "ce_type": 2},
                    "fallback_direct": {"path": base + "/UseDirectConnection", "ce_type": 6},
                    "services": {"global": {"use": {"path": global_base + "/UseProxy", "ce_type": 6},
                                            "host": {"path": global_base + "/Hostname", "ce_type": 8},
                                            "port": {"path": global_base + "/Port", "ce_type": 2}},
                                 "replication": {"use": {"path": base + "/Replication/UseProxy"},
                                                 "host": {"path": base + "/Replication/Hostname"},
                                                 "port": {"path": base + "/Replication/Port"}}}}
    cloned = apply(emu, tmp_path, template_policy=template, settings_map=settings_map,
                   proxy_host="proxy.branch.lan")
    assert cloned["changed"] is True and cloned["policy"]["template_uuid"] == shown["uuid"]
    assert cloned["map_confirmed"] is False
    mine_info = apply(emu, tmp_path, info={"name": NAME})["policies"][0]
    assert mine_info["product"] == shown["product"] and mine_info["format"] == shown["format"]
    assert mine_info["settings_flat"][host_path] == "proxy.branch.lan"
    for path, value in flat.items():
        if "Proxy" not in path:
            assert mine_info["settings_flat"][path] == value
    again = apply(emu, tmp_path, template_policy=template, settings_map=settings_map, proxy_host="proxy.branch.lan")
    assert again["changed"] is False


@pytest.mark.parametrize(("options", "words"), [
    ({"proxy_username": "agent", "proxy_password": "Proxy-Pa55!"}, "cannot use a proxy that requires authentication"),
    ({"proxy_host": "agent:Proxy-Pa55!@bridge.lan"}, "requires authentication"),
    ({"targets": ["All/Servers"]}, "no device group has the name path"),
    ({"targets": ["Linux/Servers", "00000000-0000-0000-0000-000000000000"]}, "no device group has uuid"),
    ({"services": ["all", "replication"]}, "all cannot be combined"),
    ({"rank": 0}, "rank: 0"),
    ({"password": "Wrong-Pa55word!"}, "HTTP 40"),
    ({"ca_path": None}, "give ca_path"),
])
def test_bad_input_through_ansible(emu: Emulator, tmp_path: Path, options: dict, words: str) -> None:
    opts = dict(options)
    if opts.get("ca_path", "x") is None:
        opts["ca_path"] = None
        opts["retries"] = 0
    result = apply(emu, tmp_path, **opts)
    assert result.get("failed") is True and words in result["msg"], result["msg"]
    assert "Proxy-Pa55!" not in json.dumps(result) and "Wrong-Pa55word!" not in json.dumps(result)
    assert writes(emu) == []


def test_the_role_and_playbook_with_credentials_from_the_environment(emu: Emulator, tmp_path: Path) -> None:
    conn = connection(emu)
    extra = {"epns_agent_proxy_host": "bridge.example.lan", "epns_agent_proxy_name": NAME,
             "epns_agent_proxy_targets": [SERVERS], "epns_agent_proxy_deployment": conn["deployment"],
             "epns_agent_proxy_api_urls": conn["api_urls"], "epns_agent_proxy_ca_path": conn["ca_path"]}
    site = REPO / "playbooks" / "agent_proxy.yml"
    check = playbook(site, extra, "--check", "--diff")
    assert check.returncode == 0 and "changed=1" in check.stdout and mine(emu) == [], check.stdout[-2000:]
    done = playbook(site, extra, "-vvv")
    assert done.returncode == 0 and "changed=1" in done.stdout, done.stdout[-3000:]
    assert len(mine(emu)) == 1
    again = playbook(site, extra)
    assert again.returncode == 0 and "changed=0" in again.stdout
    skipped = playbook(site, {"epns_agent_proxy_name": NAME})
    assert skipped.returncode == 0 and "changed=0" in skipped.stdout


def test_zz_no_output_holds_the_password() -> None:
    """Runs last in this module: every stdout, stderr, result and diff above, and the emulator's records."""
    assert OUTPUTS, "the scan needs the outputs of the tests above"
    joined = "\n".join(OUTPUTS)
    for secret in (PASSWORD, "Proxy-Pa55!", "Wrong-Pa55word!"):
        assert secret not in joined
