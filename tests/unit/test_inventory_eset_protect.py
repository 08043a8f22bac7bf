"""The inventory plugin protectnet.epns.eset_protect as Ansible runs it: the real `ansible-inventory --list/--graph`
in a subprocess, against the ESET PROTECT emulator on both deployments (requests read from /_emulator/requests)."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
import yaml
from _emulator import PASSWORD, Emulator, connection, control, emulator_fixture, reset
from ansible_collections.protectnet.epns.plugins.doc_fragments.eset_api import ModuleDocFragment
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._argspec import eset_api_argument_spec
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._endpoints import PAGE_LIMITS
from emulator.minimum import inventory_requests

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COLLECTIONS = REPO / ".build" / "collections"
LOGIN = {"onprem": "/GetTokens", "cloud": "/oauth/token"}
LIMITS = {"onprem": PAGE_LIMITS["on_prem"], "cloud": PAGE_LIMITS["cloud"]}
# What must never be printed or cached: the password and the emulator's access and refresh tokens.
SECRET_MARKS = (PASSWORD, "emu-at-", "emu-rt-")
CONTRACT_VARIABLES = {"ansible_host", "eset_uuid", "eset_display_name", "eset_group_path", "eset_group_uuid",
                      "eset_last_sync", "eset_public_ip", "eset_local_ip", "eset_os_family", "eset_os_name",
                      "eset_agent_version", "eset_functionality_status", "eset_tags", "eset_device_type",
                      "epns_probe_supported"}
NO_ADDRESS = {"name": "John's laptop", "address": None, "group": "All/Lab/Linux"}


emulator = emulator_fixture("onprem", "cloud")


@pytest.fixture
def emu(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """A small generated fleet (clones, collisions, odd names) plus a device without a usable address."""
    reset(emulator, monkeypatch)
    emulator.manifest = control(emulator, "POST", "fleet", {  # type: ignore[attr-defined]
        "devices": 60, "seed": 14, "now": "2026-01-15T12:00:00Z", "extra": [NO_ADDRESS]})["manifest"]
    control(emulator, "DELETE", "requests")
    return emulator


def config(tmp_path: Path, emu: Emulator, **options: t.Any) -> Path:
    path = tmp_path / "fleet.eset_protect.yml"
    path.write_text(yaml.safe_dump({"plugin": "protectnet.epns.eset_protect", "username": "api-user",
                                    **connection(emu), **options}))
    return path


def ansible_inventory(source: Path, *args: str, env: t.Optional[t.Mapping[str, str]] = None,
                      ) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("ESET_PROTECT_", "ANSIBLE_"))
                   and k.lower() not in ("https_proxy", "http_proxy")}
    environment.update({"ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS), "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
                        "ANSIBLE_INVENTORY_ENABLED": "protectnet.epns.eset_protect",
                        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true", "ANSIBLE_NOCOLOR": "1",
                        "ANSIBLE_HOME": str(source.parent / "ansible-home"), "ANSIBLE_DEPRECATION_WARNINGS": "false",
                        "ESET_PROTECT_PASSWORD": PASSWORD, **(env or {})})
    done = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(source), *args], env=environment,
                          capture_output=True, text=True, timeout=120, check=False, cwd=source.parent)
    for mark in SECRET_MARKS:
        assert mark not in done.stdout + done.stderr, f"{mark!r} was printed"
    return done


def trusted(value: t.Any) -> t.Any:
    """ansible-inventory writes what the API said as {"__ansible_unsafe": value}: never templated, as it should."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: trusted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [trusted(v) for v in value]
    return value


def listed(source: Path, **kwargs: t.Any) -> t.Tuple[t.Dict[str, t.Any], str]:
    done = ansible_inventory(source, "--list", "--export", **kwargs)
    assert done.returncode == 0, done.stderr
    return trusted(json.loads(done.stdout)), done.stderr


def requests(emu: Emulator) -> t.List[t.Dict[str, t.Any]]:
    return control(emu, "GET", "requests")["requests"]


def summary(data: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    return t.cast(t.Dict[str, t.Any], data["all"]["vars"]["eset_inventory"])


def test_list_hosts_groups_variables_clones_collisions_and_left_out(emu: Emulator, tmp_path: Path) -> None:
    # AWX injects "" for an empty credential field: it counts as unset.
    data, warnings = listed(config(tmp_path, emu), env={"ESET_PROTECT_PORT": "", "ESET_PROTECT_CA_PATH": "",
                                                         "ESET_PROTECT_SERVER": "", "ESET_PROTECT_REGION": ""})
    manifest = emu.manifest  # type: ignore[attr-defined]
    hostvars = data["_meta"]["hostvars"]
    report = summary(data)
    by_uuid = {v["eset_uuid"]: name for name, v in hostvars.items()}
    assert report["devices_listed"] == manifest["devices"] and report["hosts"] == len(hostvars)
    assert report["from_cache"] is False and report["deployment"] == connection(emu)["deployment"]
    for name, variables in hostvars.items():
        assert CONTRACT_VARIABLES <= set(variables), name
        assert variables["epns_probe_supported"] is (variables["eset_os_family"] == "linux")
    for clone in manifest["clones"]:
        old = next(u for u in clone["uuids"] if u != clone["newest"])
        assert clone["newest"] in by_uuid and old not in by_uuid
        assert {"kept": clone["newest"], "others": [old]}.items() <= next(
            c for c in report["clones"] if c["kept"] == clone["newest"]).items()
    for collision in manifest["collisions"]:
        for uuid in collision["uuids"]:
            assert by_uuid[uuid].endswith("_" + uuid[:8]), by_uuid[uuid]
            assert {"uuid": uuid, "display_name": collision["display_name"], "host": by_uuid[uuid]} in report["renamed"]
    left = {d["display_name"]: d["reason"] for d in report["left_out"]}
    assert "no usable address" in left["John's laptop"] and "is not an address or a host name" in left["John's laptop"]
    assert "left out" in warnings and "renamed" in warnings and "listed more than once" in warnings
    windows = [h for h, v in hostvars.items() if v["eset_os_family"] == "windows"]
    assert windows and set(windows) <= set(data["eset_os_windows"]["hosts"])
    assert all(hostvars[h]["epns_probe_supported"] is False for h in windows)
    assert "eset_All_Lost___found" in data["eset_All"]["children"]


def test_graph_shows_the_group_tree(emu: Emulator, tmp_path: Path) -> None:
    done = ansible_inventory(config(tmp_path, emu), "--graph")
    assert done.returncode == 0, done.stderr
    assert "@eset_All:" in done.stdout and "|--@eset_All_Lost___found:" in done.stdout
    assert "@eset_os_linux:" in done.stdout and "@eset_os_windows:" in done.stdout
    site = next(p for p in emu.manifest["group_paths"] if p.endswith("Linux servers"))  # type: ignore[attr-defined]
    assert "@eset_" + site.replace("/", "_").replace(" ", "_") + ":" in done.stdout


@pytest.mark.parametrize("agent_proxy", [True, False], ids=["agent_proxy", "without agent_proxy"])
def test_the_fewest_requests_for_thousands_of_devices(emulator: Emulator, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch, agent_proxy: bool) -> None:
    reset(emulator, monkeypatch)
    built = control(emulator, "POST", "fleet", {"devices": 2500, "seed": 3})
    control(emulator, "DELETE", "requests")
    data, _warnings = listed(config(tmp_path, emulator, agent_proxy=agent_proxy))
    limit = LIMITS[emulator.deployment]
    calls = requests(emulator)
    pages = inventory_requests(control(emulator, "GET", "state"), limit, agent_proxy) - 1
    assert pages == math.ceil(built["counts"]["groups"] / limit) + math.ceil(built["counts"]["devices"] / limit) + (
        2 if agent_proxy else 0), "the seed's policies: one page, their (no) assignments: one page"
    assert len(calls) == 1 + pages
    lists = [c for c in calls if c["api_path"] in ("/v1/devices", "/v1/device_groups", "/v2/policies",
                                                   "/v2/policy-assignments")]
    assert all(c["query"]["pageSize"] == [str(limit)] for c in lists)
    assert summary(data)["requests"] == 1 + pages and summary(data)["pages"] == pages
    assert summary(data)["devices_listed"] == 2500
    assert all(("eset_agent_proxy" in v) is agent_proxy for v in data["_meta"]["hostvars"].values())


def test_cache_second_run_makes_no_request_and_holds_no_secret(emu: Emulator, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    source = config(tmp_path, emu, cache=True, cache_plugin="ansible.builtin.jsonfile",
                    cache_connection=str(cache), cache_timeout=600)
    first, _warnings = listed(source)
    assert requests(emu) and summary(first)["from_cache"] is False
    control(emu, "DELETE", "requests")
    second, _warnings = listed(source)
    assert requests(emu) == []
    assert summary(second)["from_cache"] is True and summary(second)["requests"] == 0
    assert second["_meta"]["hostvars"] == first["_meta"]["hostvars"]
    text = "".join(p.read_text() for p in cache.rglob("*") if p.is_file())
    assert text and all(mark not in text for mark in SECRET_MARKS) and "deviceToken" not in text


FAULTS = [
    ("401 mid-paging", {"action": "status", "status": 401, "path": "/v1/devices", "nth": 2, "times": 1}, None),
    ("429 with Retry-After", {"action": "status", "status": 429, "path": "/v1/devices", "nth": 2, "times": 2,
                              "headers": {"Retry-After": "0"}}, None),
    ("202 collected", {"action": "accepted", "path": "/v1/devices", "nth": 2, "times": 1, "pending": 1}, "cloud"),
]


@pytest.mark.parametrize(("rule", "only"), [f[1:] for f in FAULTS], ids=[f[0] for f in FAULTS])
def test_faults_while_paging_are_survived(emu: Emulator, tmp_path: Path, rule: dict, only: t.Optional[str]) -> None:
    if only and emu.deployment != only:
        pytest.skip(f"{only} only")
    clean, _warnings = listed(config(tmp_path, emu, page_size=20))
    control(emu, "POST", "faults", rule)
    control(emu, "DELETE", "requests")
    data, _warnings = listed(config(tmp_path, emu, page_size=20))
    assert data["_meta"]["hostvars"].keys() == clean["_meta"]["hostvars"].keys()
    statuses = [c["status"] for c in requests(emu)]
    assert statuses.count(rule.get("status", 202)) >= 1
    (fault,) = control(emu, "GET", "faults")["faults"]
    assert fault["fired"] == rule["times"]
    if rule.get("status") == 401:
        assert [c["api_path"] for c in requests(emu)].count(LOGIN[emu.deployment]) == 2, "the token is renewed once"


FAILURES = [
    ("bad credentials", {"env": {"ESET_PROTECT_PASSWORD": "Wrong-Pa55word!"}}, "logging in to ESET PROTECT",
     "Wrong-Pa55word!"),
    ("unreachable server", {"options": {"api_urls": {"default": "https://127.0.0.1:9"}, "retries": 0}},
     "cannot be reached", None),
    ("no password (no credential attached in AWX)", {"env": {"ESET_PROTECT_PASSWORD": ""}},
     "set password in the file or ESET_PROTECT_PASSWORD in the environment", None),
    ("bad option", {"options": {"os_families": ["beos"]}}, "'beos'", None),
    ("page size above the limit", {"options": {"page_size": 20000}}, "page_size 20000 is not between 1 and", None),
    ("bad CIDR", {"options": {"ansible_host_exclude": ["10.0.0.0/33"]}}, "'10.0.0.0/33' is not a network", None),
]


@pytest.mark.parametrize(("given", "message", "hidden"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES])
def test_failures_are_clear_parser_errors(emu: Emulator, tmp_path: Path, given: dict, message: str,
                                          hidden: t.Optional[str]) -> None:
    done = ansible_inventory(config(tmp_path, emu, **given.get("options", {})), "--list", env=given.get("env"))
    assert done.returncode != 0
    stderr = " ".join(done.stderr.split())  # ansible-core 2.16 wraps warnings at the terminal width
    assert message in stderr and "eset_protect:" in stderr
    assert "Traceback" not in done.stderr
    if hidden:
        assert hidden not in done.stdout + done.stderr


def test_a_missing_group_path_is_warned_and_the_others_listed(emu: Emulator, tmp_path: Path) -> None:
    data, warnings = listed(config(tmp_path, emu, group_paths=["All/Nowhere", "Lab"]))
    assert summary(data)["missing_group_paths"] == ["All/Nowhere"]
    assert "'All/Nowhere'" in " ".join(warnings.split()) and "All/Lab/Linux" in warnings
    left = {d["display_name"] for d in summary(data)["left_out"]}
    assert left == {"John's laptop"} and data["_meta"]["hostvars"] == {}


def test_compose_keyed_groups_and_expression_sources(emu: Emulator, tmp_path: Path) -> None:
    data, _warnings = listed(config(
        tmp_path, emu, os_families=["linux"], strict=True,
        ansible_host_sources=[{"expression": "eset_display_name ~ '.lab.example'"}],
        compose={"site_probe": "epns_probe_supported"},
        keyed_groups=[{"key": "eset_os_family", "prefix": "family"}],
        groups={"stale": "eset_last_sync < '2026-01-01'"}))
    hostvars = data["_meta"]["hostvars"]
    assert hostvars and all(v["eset_os_family"] == "linux" and v["site_probe"] is True for v in hostvars.values())
    assert all(v["ansible_host"].endswith(".lab.example") for v in hostvars.values())
    assert set(data["family_linux"]["hosts"]) == set(hostvars)
    assert "stale" in data


def test_the_plugin_reads_the_environment_variables_the_modules_read() -> None:
    fallbacks = {name: spec["fallback"][1] for name, spec in eset_api_argument_spec().items() if "fallback" in spec}
    plugin = yaml.safe_load(ModuleDocFragment.PLUGIN)["options"]
    assert set(plugin) == set(eset_api_argument_spec())
    assert {name: [e["name"] for e in o["env"]] for name, o in plugin.items() if "env" in o} == fallbacks
    done = subprocess.run([str(BIN / "ansible-doc"), "-t", "inventory", "-j", "protectnet.epns.eset_protect"],
                          env={**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
                               "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false"},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)["protectnet.epns.eset_protect"]["doc"]
    rendered = {name: [e["name"] for e in o["env"]] for name, o in doc["options"].items()
                if "env" in o and name in fallbacks}
    assert rendered == fallbacks
    assert {"compose", "keyed_groups", "cache_plugin", "ansible_host_sources", "clones"} <= set(doc["options"])
