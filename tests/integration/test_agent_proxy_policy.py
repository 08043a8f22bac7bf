"""agent_proxy_policy, eset_policy_info and the epns_agent_proxy role through real ansible-playbook runs against
the ESET PROTECT emulator (tests/emulator), On-Prem and cloud: lifecycle, check mode, token expiry, 429 storms,
paging, bad input, and a scan of every output for the test password.

To keep this module fast, the module scenarios of one deployment run as the steps of ONE ansible-playbook run
(playbooks/agent_proxy_policy.yml), each step recording its result, the emulator's state after it and the calls
the emulator saw during it; the tests below assert on those records. The role runs end to end on its own, with
credentials from the environment and -vvv. A failure at each step of a replacement is module logic: it runs
in-process against the same emulator in tests/unit/test_agent_proxy_emulator.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from ansible_collections.protectnet.epns.plugins.module_utils._eset_policy import _codec as codec

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from emulator import DEFAULT_USERS, Emulator, group_uuid, uid  # noqa: E402
from emulator.client import connection, control  # noqa: E402

BIN = Path(sys.executable).parent
PLAYBOOK = Path(__file__).resolve().parent / "playbooks" / "agent_proxy_policy.yml"
PASSWORD = DEFAULT_USERS["api-user"]
NAME = "EPNS via ESET Bridge"
SERVERS = "All/Linux/Servers"
LAPTOPS = "All/Windows/Laptops"
TEMPLATE = "Agent - Use HTTP proxy (ESET Bridge)"
OTHER = uid("test:Connection - site policy")  # another policy ranked first on both groups: rank keeping shows
AUTH_PATHS = ("/GetTokens", "/oauth/token")
OUTPUTS: t.List[str] = []  # every stdout, stderr and result text of this module, scanned at the end
TASK = "TASK [Manage the agent proxy policy]"


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


def playbook(paths: t.Sequence[Path], extra_vars: t.Mapping[str, t.Any], *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                           "-e", json.dumps(dict(extra_vars)), *args, *map(str, paths)],
                          env=env(), capture_output=True, text=True, timeout=300, check=False, cwd=REPO)
    OUTPUTS.extend([done.stdout, done.stderr])
    return done


# -- the steps of one batched run ----------------------------------------------------------------------------

def seed_steps(**extra: t.Any) -> t.List[dict]:
    """Reset the emulator, then seed the other policy, first on both groups (and `extra` seed items)."""
    return [{"label": "reset", "control": {"method": "POST", "path": "reset"}},
            {"label": "seed", "control": {"method": "POST", "path": "seed", "body": {
                "policies": [{"uuid": OTHER, "displayName": "Connection - site policy"}], **extra}}},
            {"label": "seed assignments", "control": {"method": "POST", "path": "seed", "body": {"assignments": [
                {"policyUuid": OTHER, "target": {"deviceGroupUuid": group_uuid(g)}} for g in (SERVERS, LAPTOPS)]}}}]


class Run:
    """The records of one batched run, by step label."""

    def __init__(self, emu: Emulator, steps: t.List[dict], done: subprocess.CompletedProcess,
                 records: t.List[dict]) -> None:
        self.emu, self.steps, self.done, self.records = emu, steps, done, records
        # each step includes the step file once, so the n-th header of the module task belongs to step n
        self.segments = done.stdout.split(TASK)[1:]
        assert len(records) == len(steps) == len(self.segments), done.stdout[-3000:] + done.stderr[-3000:]
        self.index = {s["label"]: i for i, s in enumerate(steps)}
        assert len(self.index) == len(steps), "step labels must be unique"

    def __getitem__(self, label: str) -> dict:
        return t.cast(dict, self.records[self.index[label]]["result"])

    def shown(self, label: str) -> str:
        """What ansible-playbook printed for that step's module task."""
        return self.segments[self.index[label]]

    def calls(self, label: str) -> t.List[dict]:
        keys = ("seq", "method", "api_path", "path", "status")
        return [dict(zip(keys, r)) for r in self.records[self.index[label]]["requests"]]

    def writes(self, label: str) -> t.List[dict]:
        return [r for r in self.calls(label)
                if r["method"] != "GET" and r.get("api_path") not in AUTH_PATHS and "/_emulator/" not in r["path"]]

    def mine(self, label: str) -> t.List[dict]:
        return [{"uuid": u} for u, name in self.records[self.index[label]]["names"].items() if name == NAME]

    def ranks(self, label: str, group: str) -> t.List[t.Tuple[str, int]]:
        uuid = group_uuid(group)
        found = [a for a in self.records[self.index[label]]["assignments"]
                 if (a.get("target") or {}).get("deviceGroupUuid") == uuid]
        return [(a["policyUuid"], int(a["rank"])) for a in sorted(found, key=lambda a: int(a["rank"]))]


def batch(emu: Emulator, tmp_path: Path, steps: t.List[dict]) -> Run:
    conn = connection(emu)
    full = []
    for step in steps:
        step = dict(step)
        for key in ("app", "info"):
            if key in step:
                options = dict(conn, **step[key])
                step[key] = {k: v for k, v in options.items() if v is not None}
        full.append(step)
    result_file = tmp_path / "results.json"
    reset = emu.reset

    def keep_records_then_reset() -> None:  # what the server saw, less the login calls (by design, the only
        OUTPUTS.append(json.dumps([r for r in emu.recorder.listing() if r.get("api_path") not in AUTH_PATHS]))
        reset()  # ones that carry the password)

    emu.reset = keep_records_then_reset  # type: ignore[method-assign]
    try:
        done = playbook([PLAYBOOK], {"steps": full, "result_file": str(result_file), "emulator_url": emu.url,
                                     "emulator_ca": emu.ca_path})
    finally:
        keep_records_then_reset()
        emu.reset = reset  # type: ignore[method-assign]
    assert result_file.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    text = result_file.read_text()
    records = t.cast(t.List[dict], json.loads(text))
    OUTPUTS.append(text)
    return Run(emu, full, done, records)


def app(label: str, *, check: bool = False, diff: bool = False, **options: t.Any) -> dict:
    base: t.Dict[str, t.Any] = {"name": NAME, "proxy_host": "bridge.example.lan", "targets": [SERVERS, LAPTOPS]}
    base.update(options)
    return {"label": label, "app": base, "check": check, "diff": diff}


def template_settings_map(emu: Emulator) -> t.Tuple[str, dict]:
    """The settings map a user writes from the template's node names (the test checks that the names
    eset_policy_info reports give the same map)."""
    template = next(p for p in emu.state.snapshot()["policies"] if p["displayName"] == TEMPLATE)
    conf = template["features"][0]["configuration"]
    return conf["product"], map_from(conf["product"], codec.flatten(codec.decode(conf["data"]).sections()))


def map_from(product: str, flat: t.Mapping[str, t.Any]) -> dict:
    host_path = next(p for p in flat if p.endswith("Hostname"))
    section, rest = host_path.split("/", 1)
    base = rest.rsplit("/", 2)[0]  # e.g. Settings/ProxyConfiguration
    global_base = rest.rsplit("/", 1)[0]
    return {"product": product, "section": section,
            "proxy_mode": {"path": base + "/ProxyConfigurationType", "ce_type": 2},
            "fallback_direct": {"path": base + "/UseDirectConnection", "ce_type": 6},
            "services": {"global": {"use": {"path": global_base + "/UseProxy", "ce_type": 6},
                                    "host": {"path": global_base + "/Hostname", "ce_type": 8},
                                    "port": {"path": global_base + "/Port", "ce_type": 2}},
                         "replication": {"use": {"path": base + "/Replication/UseProxy"},
                                         "host": {"path": base + "/Replication/Hostname"},
                                         "port": {"path": base + "/Replication/Port"}}}}


NEW = {"proxy_host": "bridge2.example.lan", "proxy_port": 8080}
NEWER = {"proxy_host": "bridge3.example.lan", "proxy_port": 8080}
BAD_INPUT = [
    ({"proxy_username": "agent", "proxy_password": "Proxy-Pa55!"}, "cannot use a proxy that requires authentication"),
    ({"proxy_host": "agent:Proxy-Pa55!@bridge.lan"}, "requires authentication"),
    ({"targets": ["All/Servers"]}, "no device group has the name path"),
    ({"targets": ["Linux/Servers", "00000000-0000-0000-0000-000000000000"]}, "no device group has uuid"),
    ({"services": ["all", "replication"]}, "all cannot be combined"),
    ({"rank": 0}, "rank: 0"),
    ({"password": "Wrong-Pa55word!"}, "HTTP 40"),
    ({"ca_path": None, "retries": 0}, "give ca_path"),  # None drops the option
]


def module_steps(emu: Emulator) -> t.List[dict]:
    _product, settings_map = template_settings_map(emu)
    clone = {"template_policy": TEMPLATE, "settings_map": settings_map, "proxy_host": "proxy.branch.lan"}
    return [
        # lifecycle, check mode and idempotence
        *seed_steps(),
        app("predicted", check=True, diff=True),
        app("created", diff=True),
        app("again", diff=True),
        app("preview", check=True, diff=True, **NEW),
        app("rerun", targets=[SERVERS, LAPTOPS], rank=None),
        app("replaced", diff=True, **NEW),
        app("moved", rank=1, **NEW),
        app("newer", **NEWER),  # rank kept: 1
        app("newer again", **NEWER),
        app("gone", state="absent"),
        app("gone again", state="absent"),
        # learn the node names with eset_policy_info, then clone the template
        *[dict(s, label="clone " + s["label"]) for s in seed_steps()],
        {"label": "template info", "info": {"name": TEMPLATE}},
        app("cloned", **clone),
        {"label": "cloned info", "info": {"name": NAME}},
        app("cloned again", **clone),
        # an expired token, a 429 storm and a 202 in one run, with more policies than one page
        *[dict(s, label="storm " + s["label"])
          for s in seed_steps(**{"policies": [{"uuid": OTHER, "displayName": "Connection - site policy"}] +
                                 [{"displayName": f"filler {i}"} for i in range(120)]})],
        {"label": "expire once", "control": {"method": "POST", "path": "faults", "body": {
            "action": "status", "method": "GET", "path": "/v1/device_groups*", "status": 401, "times": 1}}},
        {"label": "429 storm", "control": {"method": "POST", "path": "faults", "body": {
            "action": "status", "path": "/v2/*", "status": 429, "nth": 3, "times": 6,
            "headers": {"Retry-After": "0"}}}},
        {"label": "202 once", "control": {"method": "POST", "path": "faults", "body": {
            "action": "accepted", "method": "POST", "path": "/v2/policies", "times": 1, "pending": 1}}},
        app("stormy", retries=8),
        {"label": "calm", "control": {"method": "DELETE", "path": "faults"}},
        {"label": "expire all", "control": {"method": "POST", "path": "tokens:expire", "body": {"refresh": True}}},
        app("after expiry"),
        # bad input, each in a fresh emulator
        *[dict(s, label="bad " + s["label"]) for s in seed_steps()],
        *[app(f"bad {i}", **options) for i, (options, _words) in enumerate(BAD_INPUT)],
    ]


@pytest.fixture(scope="module", params=["onprem", "cloud"])
def emu(request: pytest.FixtureRequest) -> t.Iterator[Emulator]:
    with Emulator(request.param) as running:
        yield running


@pytest.fixture(scope="module")
def run(emu: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Every module scenario of this deployment, one ansible-playbook run."""
    return batch(emu, tmp_path_factory.mktemp(f"steps-{emu.deployment}"), module_steps(emu))


def test_lifecycle_check_mode_and_idempotence(run: Run) -> None:
    predicted = run["predicted"]
    assert predicted["changed"] is True and run.writes("predicted") == [] and run.mine("predicted") == []
    assert "bridge.example.lan" in run.shown("predicted")  # the diff is shown
    assert "changed: [localhost]" in run.shown("predicted")

    created = run["created"]
    assert created["changed"] is True and "changed: [localhost]" in run.shown("created")
    (policy,) = run.mine("created")
    assert run.ranks("created", SERVERS) == [(OTHER, 1), (policy["uuid"], 2)]

    again = run["again"]
    assert again["changed"] is False and "ok: [localhost]" in run.shown("again")
    assert "changed: [localhost]" not in run.shown("again")

    preview = run["preview"]
    assert preview["changed"] is True and preview["replaced"] is True and run.writes("preview") == []

    # ours first on Servers: the replacement must keep rank 1 there and rank 2 on Laptops
    assert run["rerun"]["changed"] is False
    replaced = run["replaced"]
    assert replaced["replaced"] is True and replaced["removed_policies"] == [policy["uuid"]]
    (new,) = run.mine("replaced")
    assert run.ranks("replaced", SERVERS)[1][0] == new["uuid"] and run.ranks("replaced", LAPTOPS)[1][0] == new["uuid"]
    moved = run["moved"]
    assert moved["changed"] is True and not moved["replaced"]
    assert run.ranks("moved", SERVERS)[0] == (new["uuid"], 1) and run.ranks("moved", LAPTOPS)[0] == (new["uuid"], 1)
    (third,) = run.mine("newer")
    assert run["newer"]["replaced"] and run.ranks("newer", SERVERS)[0] == (third["uuid"], 1)
    assert run.ranks("newer", LAPTOPS)[0] == (third["uuid"], 1)
    assert run["newer again"]["changed"] is False

    gone = run["gone"]
    assert gone["changed"] is True and run.mine("gone") == []
    assert run.ranks("gone", SERVERS) == [(OTHER, 1)]
    assert run["gone again"]["changed"] is False


def test_expired_token_429_storm_and_paging(run: Run) -> None:
    result = run["stormy"]
    assert result["changed"] is True, result.get("msg")
    assert result["api"]["reauthentications"] == 1 and result["api"]["retries"] >= 6
    assert result["api"]["collected_202"] >= 1 and len(run.mine("stormy")) == 1
    pages = [r for r in run.calls("stormy")
             if r.get("api_path") == "/v2/policies" and r["method"] == "GET" and r["status"] == 200]
    assert len(pages) >= 2  # 127 policies do not fit one default page (100 On-Prem, 50 cloud)
    assert run["after expiry"]["changed"] is False  # after every token, refresh tokens too, was gone


def test_learn_node_names_then_clone_a_template(run: Run) -> None:
    (shown,) = run["template info"]["policies"]
    flat = shown["settings_flat"]
    host_path = next(p for p in flat if p.endswith("Hostname"))
    settings_map = map_from(shown["product"], flat)
    assert run.steps[run.index["cloned"]]["app"]["settings_map"] == settings_map  # the names info reports
    cloned = run["cloned"]
    assert cloned["changed"] is True and cloned["policy"]["template_uuid"] == shown["uuid"]
    assert cloned["map_confirmed"] is False
    mine_info = run["cloned info"]["policies"][0]
    assert mine_info["product"] == shown["product"] and mine_info["format"] == shown["format"]
    assert mine_info["settings_flat"][host_path] == "proxy.branch.lan"
    for path, value in flat.items():
        if "Proxy" not in path:
            assert mine_info["settings_flat"][path] == value
    assert run["cloned again"]["changed"] is False


@pytest.mark.parametrize(("index", "words"), [(i, w) for i, (_o, w) in enumerate(BAD_INPUT)],
                         ids=[w for _o, w in BAD_INPUT])
def test_bad_input_through_ansible(run: Run, index: int, words: str) -> None:
    label = f"bad {index}"
    result = run[label]
    assert result.get("failed") is True and words in result["msg"], result["msg"]
    assert "Proxy-Pa55!" not in json.dumps(result) and "Wrong-Pa55word!" not in json.dumps(result)
    assert run.writes(label) == [] and "...ignoring" in run.shown(label)


def test_protobuf_json_variants_stay_idempotent(tmp_path: Path) -> None:
    """A gateway may send int64 as strings and zero values explicitly; ranks and paging must not care."""
    with Emulator("cloud", int64_as_string=True, emit_unpopulated=True) as emu:
        done = batch(emu, tmp_path, [*seed_steps(), app("ranked", rank=1), app("ranked again", rank=1),
                                     app("replaced", proxy_host="other.example.lan"),
                                     app("replaced again", proxy_host="other.example.lan")])
    (policy,) = done.mine("ranked")
    assert done.ranks("ranked", SERVERS)[0] == (policy["uuid"], 1)
    assert done["ranked again"]["changed"] is False
    assert done["replaced"]["replaced"] and done.ranks("replaced", SERVERS)[0][1] == 1
    assert done["replaced again"]["changed"] is False


def role_vars(emu: Emulator) -> dict:
    conn = connection(emu)
    return {"epns_agent_proxy_host": "bridge.example.lan", "epns_agent_proxy_name": NAME,
            "epns_agent_proxy_targets": [SERVERS], "epns_agent_proxy_deployment": conn["deployment"],
            "epns_agent_proxy_api_urls": conn["api_urls"], "epns_agent_proxy_ca_path": conn["ca_path"]}


SITE = REPO / "playbooks" / "agent_proxy.yml"


def test_the_role_and_playbook_with_credentials_from_the_environment(emu: Emulator) -> None:
    control(emu, "POST", "reset")
    mine = lambda: [p for p in control(emu, "GET", "state")["policies"] if p.get("displayName") == NAME]  # noqa: E731
    extra = role_vars(emu)
    check = playbook([SITE], extra, "--check", "--diff")
    assert check.returncode == 0 and "changed=1" in check.stdout and mine() == [], check.stdout[-2000:]
    # the site playbook twice in one run: it creates the policy, then changes nothing
    done = playbook([SITE, SITE], extra, "-vvv")
    assert done.returncode == 0, done.stdout[-3000:]
    module_task = "TASK [protectnet.epns.epns_agent_proxy : Set the agents' HTTP proxy policy in ESET PROTECT]"
    first, second = done.stdout.split(module_task)[1:]
    assert "changed: [localhost]" in first and "changed: [localhost]" not in second and "ok: [localhost" in second
    assert "changed=1" in done.stdout.split("PLAY RECAP")[-1]
    assert len(mine()) == 1
    OUTPUTS.append(json.dumps([r for r in control(emu, "GET", "requests")["requests"]
                               if r.get("api_path") not in AUTH_PATHS]))


def test_the_playbook_is_skipped_without_a_proxy_host() -> None:
    skipped = playbook([SITE], {"epns_agent_proxy_name": NAME})
    assert skipped.returncode == 0 and "changed=0" in skipped.stdout and "skipping: [localhost]" in skipped.stdout


def test_zz_no_output_holds_the_password() -> None:
    """Runs last in this module: every stdout, stderr, result and diff above, and the emulator's records."""
    assert OUTPUTS, "the scan needs the outputs of the tests above"
    joined = "\n".join(OUTPUTS)
    for secret in (PASSWORD, "Proxy-Pa55!", "Wrong-Pa55word!"):
        assert secret not in joined
