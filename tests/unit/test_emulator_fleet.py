"""The emulator's generated fleet (tests/emulator/fleet.py): deterministic from its seed, shaped as its header
and README say, served with the specs' paging at 10,000 devices, and the faults an inventory meets on the
paging path (401 in the middle, 429 with Retry-After, cloud 202). Raw HTTPS, so every status and header shows.
"""
from __future__ import annotations

import http.client
import ipaddress
import json
import re
import ssl
import subprocess
import sys
import time
import typing as t
from collections import Counter
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit

import pytest
from _emulator import PASSWORD, TESTS, Emulator, control, group_uuid
from emulator import fleet  # importable once _emulator has put tests/ on the path
from emulator.fleet import ODD_NAMES, SITE_GROUPS

NOW = "2025-06-01T12:00:00Z"
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
LIMITS = {"onprem": (100, 10000), "cloud": (50, 1000)}
BIG = 10000


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def big() -> t.Dict[str, t.Any]:
    return fleet(devices=BIG, seed=14, now=NOW)


# -- the generator ----------------------------------------------------------------------------------------------
def test_same_seed_same_fleet_other_seed_other_fleet() -> None:
    first = fleet(devices=400, seed=7, now=NOW)
    assert fleet(devices=400, seed=7, now=NOW) == first
    other = fleet(devices=400, seed=8, now=NOW)
    assert {d["uuid"] for d in other["devices"]}.isdisjoint(d["uuid"] for d in first["devices"])
    # Without `now`, only the sync times move with the clock.
    def strip(built: t.Dict[str, t.Any]) -> t.List[t.Dict[str, t.Any]]:
        return [{k: v for k, v in d.items() if k != "lastSyncTime"} for d in built["devices"]]
    assert strip(fleet(devices=400, seed=7)) == strip(first)


def test_tree_is_rooted_at_the_seeds_all_and_named_by_path(big: t.Dict[str, t.Any]) -> None:
    groups = {g["uuid"]: g for g in big["groups"]}
    paths = big["manifest"]["group_paths"]
    assert len(groups) == len(big["groups"]) == big["manifest"]["groups"] == len(paths)
    assert paths["All"] == group_uuid("All") and "parentGroupUuid" not in groups[group_uuid("All")]
    assert paths["All/Lost & found"] == group_uuid("All/Lost & found")
    for path, uuid in paths.items():
        assert uuid == group_uuid(path)
        if path != "All":
            assert groups[uuid]["parentGroupUuid"] == paths[path.rsplit("/", 1)[0]]
    sites = big["manifest"]["sites"]
    assert len(sites) == 40 and {s["path"].split("/")[1] for s in sites} == {"Europe", "North America",
                                                                            "Asia Pacific"}
    for site in sites:
        assert all(f"{site['path']}/{name}" in paths for name in SITE_GROUPS)
    assert all(d["parentGroupUuid"] in groups for d in big["devices"])


def test_operating_systems_in_realistic_proportions(big: t.Dict[str, t.Any]) -> None:
    devices = big["devices"]
    assert len(devices) == BIG == big["manifest"]["devices"]
    assert len({d["uuid"] for d in devices}) == BIG
    family = Counter(d["operatingSystem"].get("familyId", 0) for d in devices)
    assert {str(k): v for k, v in sorted(family.items())} == big["manifest"]["os_families"]
    share = {k: v / BIG for k, v in family.items()}
    assert 0.62 < share[1] < 0.75 and 0.15 < share[2] < 0.23 and 0.06 < share[3] < 0.12
    assert 0.01 < share[4] + share[7] + share[0] < 0.07
    linux = [d for d in devices if d["operatingSystem"].get("familyId") == 2]
    assert {d["operatingSystem"]["editionId"] for d in linux} == {1, 2}
    assert any(d["operatingSystem"]["displayName"] == "Debian GNU/Linux 12" for d in linux)
    windows = next(d for d in devices if d["operatingSystem"]["displayName"] == "Microsoft Windows 11 Pro")
    assert windows["operatingSystem"]["version"] == {"name": "10.0.22631", "id": str(10 << 48 | 22631)}
    lost = group_uuid("All/Lost & found")
    assert all(d["parentGroupUuid"] == lost for d in devices if d["operatingSystem"].get("familyId") in (4, 7))


def test_device_fields_components_and_sync_times(big: t.Dict[str, t.Any]) -> None:
    devices = big["devices"]
    now = parse_time(NOW)
    for device in devices:
        assert RFC3339_UTC.match(device["lastSyncTime"]) and parse_time(device["lastSyncTime"]) <= now
        assert device["functionalityStatus"].startswith("DEVICE_FUNCTIONALITY_STATUS_")
        assert device["deviceType"].startswith("DEVICE_TYPE_") and isinstance(device["isMuted"], bool)
        assert all(isinstance(tag, str) for tag in device["tags"])
    ages = [now - parse_time(d["lastSyncTime"]) for d in devices]
    assert sum(age < timedelta(hours=1) for age in ages) > 0.85 * BIG
    assert 0.03 * BIG < sum(age > timedelta(days=7) for age in ages) < 0.08 * BIG
    agents = [c for d in devices for c in d["deployedComponents"] if c["name"] == "ESET_MANAGEMENT_AGENT"]
    assert len(agents) > 0.97 * BIG and all(c["displayName"] == "ESET Management Agent" for c in agents)
    assert all(re.fullmatch(r"12\.\d+\.\d+\.\d+", c["version"]["name"]) for c in agents)
    assert sum(len(d["deployedComponents"]) == 2 for d in devices) > 0.8 * BIG
    profile = next(d for d in devices if d.get("hardwareProfiles"))["hardwareProfiles"][0]
    assert set(profile) == {"bios", "networkAdapters", "manufacturer", "model"}
    assert set(profile["bios"]) == {"uuid", "serialNumber", "manufacturer"}
    assert re.fullmatch(r"([0-9A-F]{2}:){5}[0-9A-F]{2}", profile["networkAdapters"][0]["macAddress"])
    assert sum(d["isMuted"] for d in devices) > 0 and sum(bool(d["tags"]) for d in devices) > 0.2 * BIG


def test_addresses_repeat_across_sites_and_the_odd_ones_are_listed(big: t.Dict[str, t.Any]) -> None:
    devices = {d["uuid"]: d for d in big["devices"]}
    manifest = big["manifest"]
    branches = [s for s in manifest["sites"] if s["network"] == "192.168.1.0/24"]
    assert len(branches) >= 2 and len({s["public_ip"] for s in manifest["sites"]}) == len(manifest["sites"])
    by_address: t.Dict[str, t.Set[str]] = {}
    for device in devices.values():
        if "primaryLocalIpAddress" in device:
            by_address.setdefault(device["primaryLocalIpAddress"], set()).add(device["publicIpAddress"])
    assert len(by_address["192.168.1.11"]) >= 2  # the same private address behind two sites' public ones
    odd = manifest["addresses"]
    assert all(len(odd[kind]) >= 0.004 * BIG for kind in ("vpn", "container", "none", "ipv6"))
    for kind, network in (("vpn", "100.64.0.0/10"), ("container", "172.17.0.0/16")):
        net = ipaddress.ip_network(network)
        assert all(ipaddress.ip_address(devices[u]["primaryLocalIpAddress"]) in net for u in odd[kind])
        rest = [d for u, d in devices.items() if u not in odd[kind] and "primaryLocalIpAddress" in d]
        assert not any(ipaddress.ip_address(d["primaryLocalIpAddress"]) in net for d in rest)
    assert all(devices[u]["operatingSystem"]["familyId"] == 2 for u in odd["container"])
    assert all("primaryLocalIpAddress" not in devices[u] for u in odd["none"])
    assert sum("primaryLocalIpAddress" not in d for d in devices.values()) == len(odd["none"])
    assert all(ipaddress.ip_address(devices[u]["primaryLocalIpAddress"]).version == 6 for u in odd["ipv6"])


def test_clones_collisions_and_odd_names_as_the_manifest_says(big: t.Dict[str, t.Any]) -> None:
    devices = {d["uuid"]: d for d in big["devices"]}
    manifest = big["manifest"]
    names = Counter(d["displayName"] for d in devices.values())
    bios = Counter(d["hardwareProfiles"][0]["bios"]["uuid"] for d in devices.values() if d.get("hardwareProfiles"))
    assert [c["kind"] for c in manifest["clones"]] == ["bios", "bios", "address"]
    for clone in manifest["clones"]:
        old, new = (devices[u] for u in clone["uuids"])
        assert clone["newest"] == new["uuid"] and old["displayName"] == new["displayName"] == clone["display_name"]
        assert names[clone["display_name"]] == 2
        assert parse_time(new["lastSyncTime"]) - parse_time(old["lastSyncTime"]) > timedelta(days=20)
        if clone["kind"] == "bios":
            assert old["hardwareProfiles"] == new["hardwareProfiles"]
            assert bios[clone["machine"]] == 2 and old["primaryLocalIpAddress"] != new["primaryLocalIpAddress"]
        else:
            assert "hardwareProfiles" not in old and "hardwareProfiles" not in new
            assert clone["machine"] == f"{new['displayName']}@{new['primaryLocalIpAddress']}"
            assert old["primaryLocalIpAddress"] == new["primaryLocalIpAddress"]
    assert [len(c["uuids"]) for c in manifest["collisions"]] == [2, 2, 3]
    for collision in manifest["collisions"]:
        members = [devices[u] for u in collision["uuids"]]
        assert names[collision["display_name"]] == len(members)
        assert len({m["hardwareProfiles"][0]["bios"]["uuid"] for m in members}) == len(members)
        assert len({m["parentGroupUuid"] for m in members}) == len(members)
    clone_names = {c["display_name"] for c in manifest["clones"]}
    collision_names = {c["display_name"] for c in manifest["collisions"]}
    assert {n for n, count in names.items() if count > 1} == clone_names | collision_names
    assert [(o["display_name"], devices[o["uuid"]]["displayName"]) for o in manifest["odd_names"]] == \
        [(n, n) for n, _ in ODD_NAMES]
    assert {"John's laptop", "büro-pc 2", "HR/Payroll server"} <= {n for n, _ in ODD_NAMES}


def test_counts_are_exact_and_bad_counts_are_refused_by_name() -> None:
    smallest = fleet(devices=len(ODD_NAMES), clones=0, collisions=0, now=NOW)
    assert len(smallest["devices"]) == len(ODD_NAMES) and len(smallest["manifest"]["sites"]) == 2
    one = fleet(devices=100, clones=1, collisions=1, now=NOW)["manifest"]
    assert [c["kind"] for c in one["clones"]] == ["bios"] and len(one["collisions"]) == 1
    with pytest.raises(ValueError, match=r"devices must be at least 18 for clones=3 and collisions=3 \(.*\), not 10$"):
        fleet(devices=10)
    for bad in ({"devices": -1}, {"seed": "x"}, {"clones": 1.5}, {"devices": True}):
        with pytest.raises(ValueError, match=f"{next(iter(bad))} must be a whole number"):
            fleet(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="extra must be a list of devices, not 'lab-agent-1'"):
        fleet(devices=20, extra="lab-agent-1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="now must carry a time zone"):
        fleet(now="2025-06-01T12:00:00")


LAB = [{"name": "lab-agent-1", "group": "All/Lab/Linux servers", "address": "10.88.0.2", "family_id": 2,
        "os_name": "Debian GNU/Linux 12", "tags": ["lab"]},
       {"name": "lab-win", "group": "All/Lab/Windows", "address": None, "family_id": 1, "uuid": "lab-win-uuid"}]


def test_extra_devices_register_a_labs_hosts() -> None:
    built = fleet(devices=50, seed=3, extra=LAB, now=NOW)
    devices = {d["displayName"]: d for d in built["devices"]}
    assert len(built["devices"]) == 52 and built["manifest"]["devices"] == 52
    agent, win = devices["lab-agent-1"], devices["lab-win"]
    assert agent["parentGroupUuid"] == group_uuid("All/Lab/Linux servers")
    assert built["manifest"]["group_paths"]["All/Lab"] == group_uuid("All/Lab")
    assert agent["primaryLocalIpAddress"] == "10.88.0.2" and agent["tags"] == ["lab"]
    assert agent["operatingSystem"]["familyId"] == 2 and agent["operatingSystem"]["displayName"] == \
        "Debian GNU/Linux 12"
    assert agent["uuid"] == built["manifest"]["extra"][0]["uuid"] and agent["lastSyncTime"] == "2025-06-01T11:59:30Z"
    assert any(c["name"] == "ESET_MANAGEMENT_AGENT" for c in agent["deployedComponents"])
    assert win["uuid"] == "lab-win-uuid" and "primaryLocalIpAddress" not in win
    assert win["operatingSystem"]["familyId"] == 1
    # The generated part does not move when extras are added.
    assert built["devices"][:50] == fleet(devices=50, seed=3, now=NOW)["devices"]


@pytest.mark.parametrize("extra, message", [
    ({"name": "x", "addr": "10.0.0.1"}, r"unknown fields \['addr'\]"),
    ({"name": ""}, "name must be a non-empty string"),
    ({"name": "x", "address": "10.0.0.300"}, "address must be an IP address, not '10.0.0.300'"),
    ({"name": "x", "family_id": 9}, "family_id must be one of"),
    ({"name": "x", "group": "Lab/Linux"}, "group path must start with 'All'"),
])
def test_bad_extra_devices_are_named(extra: t.Dict[str, t.Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fleet(devices=20, extra=[extra])


# -- served by the emulator -------------------------------------------------------------------------------------
class Api:
    """Bare HTTPS calls to one emulator, logged in as the API user."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.context = ssl.create_default_context(cafile=emu.ca_path)
        self.prefix = "/device-management" if emu.deployment == "cloud" else ""
        self.token = ""
        self.login()

    def raw(self, method: str, path: str, body: t.Optional[bytes] = None,
            headers: t.Optional[t.Dict[str, str]] = None) -> t.Tuple[int, t.Dict[str, str], t.Any]:
        conn = http.client.HTTPSConnection("127.0.0.1", self.emu.port, context=self.context, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            answer = conn.getresponse()
            data = answer.read()
            return answer.status, {k.lower(): v for k, v in answer.getheaders()}, json.loads(data) if data else None
        finally:
            conn.close()

    def login(self) -> None:
        if self.emu.deployment == "onprem":
            body = json.dumps({"username": "api-user", "password": PASSWORD, "grant_type": 0}).encode()
            status, _, answer = self.raw("POST", "/GetTokens", body, {"Content-Type": "application/json"})
            self.token = answer["accessToken"]
        else:
            form = urlencode({"grant_type": "password", "username": "api-user", "password": PASSWORD}).encode()
            status, _, answer = self.raw("POST", "/business-account.iam/oauth/token", form,
                                         {"Content-Type": "application/x-www-form-urlencoded"})
            self.token = answer["access_token"]
        assert status == 200

    def get(self, path: str, **headers: str) -> t.Tuple[int, t.Dict[str, str], t.Any]:
        return self.raw("GET", self.prefix + path, headers={"Authorization": f"Bearer {self.token}", **headers})

    def page(self, query: t.Dict[str, t.Any], path: str = "/v1/devices") -> t.Tuple[int, t.Dict[str, str], t.Any]:
        return self.get(f"{path}?{urlencode(query)}")


@pytest.fixture(scope="module", params=["onprem", "cloud"])
def served(request: pytest.FixtureRequest, big: t.Dict[str, t.Any]) -> t.Iterator[Emulator]:
    with Emulator(request.param) as emu:
        answer = control(emu, "POST", "fleet", {"devices": BIG, "seed": 14, "now": NOW})
        assert answer["manifest"] == big["manifest"]
        yield emu


@pytest.fixture
def api(served: Emulator) -> t.Iterator[Api]:
    control(served, "DELETE", "faults")
    control(served, "DELETE", "requests")
    yield Api(served)
    control(served, "DELETE", "faults")


def walk(api: Api, size: int, path: str = "/v1/devices", **query: str) -> t.List[t.Dict[str, t.Any]]:
    """Every page of a listing, each page's items in order; fails on anything but 200."""
    pages: t.List[t.Dict[str, t.Any]] = []
    token = ""
    while True:
        status, _, answer = api.page({"pageSize": size, **query, **({"pageToken": token} if token else {})}, path)
        assert status == 200, answer
        pages.append(answer)
        token = answer.get("nextPageToken", "")
        if not token:
            return pages


def test_paging_10000_devices_in_the_fewest_pages(api: Api, big: t.Dict[str, t.Any]) -> None:
    default, maximum = LIMITS[api.emu.deployment]
    started = time.monotonic()
    pages = walk(api, maximum)
    elapsed = time.monotonic() - started
    assert [len(p["devices"]) for p in pages] == [maximum] * (BIG // maximum)
    assert [d["uuid"] for p in pages for d in p["devices"]] == [d["uuid"] for d in big["devices"]]
    assert elapsed < 3, f"{len(pages)} pages of {maximum} took {elapsed:.2f} s"
    records = [r for r in control(api.emu, "GET", "requests")["requests"] if r["api_path"] == "/v1/devices"]
    assert [r["response_items"] for r in records] == [{"devices": maximum}] * len(pages)
    assert records[0]["response"]["devices"] == f"<{maximum} items, not recorded>"
    assert len(walk(api, 99999)) == len(pages)  # above the maximum (the schema allows 99999): cut down to it
    status, _, first = api.page({})
    assert status == 200 and len(first["devices"]) == default


@pytest.mark.parametrize("served", ["onprem"], indirect=True)  # a page of 10000 is On-Prem's maximum
def test_one_onprem_page_of_10000_is_fast(api: Api) -> None:
    timings = []
    for _ in range(2):
        started = time.monotonic()
        status, _, answer = api.page({"pageSize": BIG})
        timings.append(time.monotonic() - started)
        assert status == 200 and len(answer["devices"]) == BIG and "nextPageToken" not in answer
    assert min(timings) < 2, timings


def test_page_tokens_stay_bound_to_their_filters(api: Api) -> None:
    status, _, first = api.page({"pageSize": 50, "isMuted": "false"})
    assert status == 200 and first["nextPageToken"]
    status, _, answer = api.page({"pageSize": 50, "pageToken": first["nextPageToken"]})
    assert status == 400, answer
    muted = walk(api, 1000, isMuted="true")
    assert {d["isMuted"] for p in muted for d in p["devices"]} == {True}


def test_group_members_recurse_through_the_fleets_tree(api: Api, big: t.Dict[str, t.Any]) -> None:
    region = group_uuid("All/Europe")
    below = {u for p, u in big["manifest"]["group_paths"].items() if p.startswith("All/Europe/")}
    expected = [d["uuid"] for d in big["devices"] if d["parentGroupUuid"] in below]
    pages = walk(api, LIMITS[api.emu.deployment][1], f"/v1/device_groups/{region}/devices", recurseSubgroups="true")
    members = [m for p in pages for m in p["devices"]]
    assert [m["uuid"] for m in members] == expected and pages[0]["totalSize"] == len(expected) > 1000
    assert {m["groupUuid"] for m in members} <= below
    status, _, direct = api.page({}, f"/v1/device_groups/{region}/devices")
    assert status == 200 and "devices" not in direct  # the region itself holds no device
    status, _, groups = api.page({"pageSize": 1000}, "/v1/device_groups")
    assert status == 200 and len(groups["deviceGroups"]) == big["manifest"]["groups"]


# -- faults on the paging path ----------------------------------------------------------------------------------
def test_401_in_the_middle_of_paging(api: Api) -> None:
    control(api.emu, "POST", "faults", {"action": "status", "path": "/v1/devices", "nth": 3, "status": 401})
    size = LIMITS[api.emu.deployment][1] // 10
    _, _, first = api.page({"pageSize": size})
    _, _, second = api.page({"pageSize": size, "pageToken": first["nextPageToken"]})
    status, headers, body = api.page({"pageSize": size, "pageToken": second["nextPageToken"]})
    assert (status, body) == (401, None) and headers["request-id"]
    api.login()  # a client logs in again and asks for the same page
    status, _, third = api.page({"pageSize": size, "pageToken": second["nextPageToken"]})
    assert status == 200 and len(third["devices"]) == size


def test_429_with_retry_after_while_paging(api: Api) -> None:
    control(api.emu, "POST", "faults", {"action": "status", "path": "/v1/devices", "nth": 2, "status": 429,
                                        "headers": {"Retry-After": "1"}})
    size = LIMITS[api.emu.deployment][1] // 10
    _, _, first = api.page({"pageSize": size})
    status, headers, body = api.page({"pageSize": size, "pageToken": first["nextPageToken"]})
    assert (status, headers["retry-after"], body) == (429, "1", None)
    status, _, second = api.page({"pageSize": size, "pageToken": first["nextPageToken"]})
    assert status == 200 and second["devices"][0]["uuid"] != first["devices"][0]["uuid"]


@pytest.mark.parametrize("served", ["cloud"], indirect=True)  # 202 and response-id are ESET Connect's
def test_cloud_202_accepted_while_paging(api: Api) -> None:
    control(api.emu, "POST", "faults", {"action": "accepted", "path": "/v1/devices", "nth": 2, "pending": 1})
    _, _, first = api.page({"pageSize": 1000})
    query = f"/v1/devices?{urlencode({'pageSize': 1000, 'pageToken': first['nextPageToken']})}"
    status, headers, body = api.get(query)
    assert (status, body) == (202, None)
    ticket = headers["response-id"]
    assert api.get(query, **{"response-id": ticket})[0] == 202  # still pending once
    status, _, second = api.get(query, **{"response-id": ticket})
    assert status == 200 and len(second["devices"]) == 1000 and second["nextPageToken"]
    assert api.get(query, **{"response-id": ticket})[0] == 404  # collected: gone
    assert len(walk(api, 1000)) == 10  # the rule fired once; paging goes on as before


# -- the control call and the CLI -------------------------------------------------------------------------------
def test_control_call_replaces_groups_and_devices_and_keeps_policies() -> None:
    with Emulator("onprem") as emu:
        policy = control(emu, "POST", "seed", {"policies": [{"displayName": "site policy"}]})["policies"][0]
        control(emu, "POST", "seed", {"assignments": [
            {"policyUuid": policy["uuid"], "target": {"deviceGroupUuid": group_uuid(path)}}
            for path in ("All", "All/Linux/Servers")]})
        answer = control(emu, "POST", "fleet", {"devices": 300, "seed": 5, "now": NOW, "extra": LAB[:1]})
        assert answer["counts"] == {"groups": answer["manifest"]["groups"], "devices": 301,
                                    "assignments_dropped": 1}
        assert answer["manifest"] == fleet(devices=300, seed=5, now=NOW, extra=LAB[:1])["manifest"]
        state = control(emu, "GET", "state")
        assert len(state["devices"]) == 301 and group_uuid("All/Linux/Servers") not in \
            {g["uuid"] for g in state["groups"]}
        assert [a["target"] for a in state["assignments"]] == [{"deviceGroupUuid": group_uuid("All")}]
        assert state["assignments"][0]["rank"] == 1 and policy["uuid"] in {p["uuid"] for p in state["policies"]}
        for body, message in (({"devices": 300, "size": 1}, "unknown fleet fields ['size']"),
                              ({"devices": 2}, "devices must be at least 18")):
            with pytest.raises(Exception) as failed:
                control(emu, "POST", "fleet", body)
            assert getattr(failed.value, "code", None) == 400
            assert message in json.loads(failed.value.read())["error"]  # type: ignore[attr-defined]
        control(emu, "POST", "reset")
        assert [d["displayName"] for d in control(emu, "GET", "state")["devices"]][:2] == ["lnx-web-01", "lnx-db-01"]


def test_cli_fleet_flag() -> None:
    run = [sys.executable, str(TESTS / "emulator" / "run.py"), "--listen", "127.0.0.1:0"]
    proc = subprocess.Popen([*run, "--fleet", "300", "--fleet-seed", "5"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ca = proc.stdout.readline().split(" ", 1)[1].strip()
        url = proc.stdout.readline().split(" ", 1)[1].strip()
        context = ssl.create_default_context(cafile=ca)
        conn = http.client.HTTPSConnection("127.0.0.1", urlsplit(url).port, context=context, timeout=30)
        conn.request("GET", "/_emulator/state")
        state = json.loads(conn.getresponse().read())
        conn.close()
        expected = fleet(devices=300, seed=5)
        assert [d["uuid"] for d in state["devices"]] == [d["uuid"] for d in expected["devices"]]
        assert len(state["groups"]) == len(expected["groups"])
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    refused = subprocess.run([*run, "--fleet", "3"], capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2 and "--fleet: devices must be at least 18" in refused.stderr

