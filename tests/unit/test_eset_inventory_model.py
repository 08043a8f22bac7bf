"""The inventory model (plugin_utils/_eset_inventory): ESET PROTECT's device and group lists -> hosts, variables,
groups and the eset_inventory summary, table by table."""
from __future__ import annotations

import typing as t

import pytest
from ansible_collections.protectnet.epns.plugins.plugin_utils._eset_inventory._clones import identities, sync_time
from ansible_collections.protectnet.epns.plugins.plugin_utils._eset_inventory._device import (
    agent_version,
    os_family,
    without_private_fields,
)
from ansible_collections.protectnet.epns.plugins.plugin_utils._eset_inventory._model import Inventory, build
from ansible_collections.protectnet.epns.plugins.plugin_utils._eset_inventory._options import inventory_options

GROUPS = [
    {"uuid": "00000000-0000-0000-0000-00000000a11a", "displayName": "All"},
    {"uuid": "00000000-0000-0000-0000-0000000011a0", "displayName": "Linux",
     "parentGroupUuid": "00000000-0000-0000-0000-00000000a11a"},
    {"uuid": "00000000-0000-0000-0000-000000005e20", "displayName": "Servers",
     "parentGroupUuid": "00000000-0000-0000-0000-0000000011a0"},
    {"uuid": "00000000-0000-0000-0000-00000000f00d", "displayName": "Lost & found",
     "parentGroupUuid": "00000000-0000-0000-0000-00000000a11a"},
    {"uuid": "00000000-0000-0000-0000-00000000d1d0", "displayName": "Windows",
     "parentGroupUuid": "00000000-0000-0000-0000-00000000a11a"},
]
SERVERS, LOST, WINDOWS = GROUPS[2]["uuid"], GROUPS[3]["uuid"], GROUPS[4]["uuid"]


def device(name: str, uuid: str, ip: t.Optional[str] = "10.0.1.1", family: t.Any = 2, group: str = SERVERS,
           synced: str = "2026-01-01T10:00:00Z", **extra: t.Any) -> t.Dict[str, t.Any]:
    out: t.Dict[str, t.Any] = {"uuid": uuid, "displayName": name, "parentGroupUuid": group, "lastSyncTime": synced,
                               "operatingSystem": {"displayName": "Debian GNU/Linux 12", "familyId": family}}
    if ip is not None:
        out["primaryLocalIpAddress"] = ip
    out.update(extra)
    return out


def hardware(bios_uuid: str = "", serial: str = "", maker: str = "", mac: str = "") -> t.List[t.Dict[str, t.Any]]:
    return [{"bios": {"uuid": bios_uuid, "serialNumber": serial, "manufacturer": maker},
             "networkAdapters": [{"macAddress": mac, "caption": "eth0"}] if mac else []}]


def inventory(devices: t.Sequence[t.Mapping[str, t.Any]], evaluate: t.Any = None, **options: t.Any) -> Inventory:
    return build(devices, GROUPS, inventory_options(options), evaluate, "on_prem")


# --- names and collisions --------------------------------------------------------------------------------------
NAMING = [
    ("plain name kept", ["web-01"], ["web-01"], []),
    ("characters outside [A-Za-z0-9._-] become _", ["John's laptop"], ["John_s_laptop"], ["John_s_laptop"]),
    ("every member of a collision gets its uuid's first 8 characters", ["web 01", "web_01"],
     ["web_01_aaaaaaa1", "web_01_aaaaaaa2"], ["web_01_aaaaaaa1", "web_01_aaaaaaa2"]),
    ("an empty name becomes the uuid", ["   "], ["aaaaaaa1-0000-0000-0000-000000000000"],
     ["aaaaaaa1-0000-0000-0000-000000000000"]),
]


@pytest.mark.parametrize(("names", "hosts", "renamed"), [c[1:] for c in NAMING], ids=[c[0] for c in NAMING])
def test_host_names_are_sanitised_and_collisions_resolved_by_uuid(names: t.List[str], hosts: t.List[str],
                                                                  renamed: t.List[str]) -> None:
    devices = [device(n, f"aaaaaaa{i + 1}-0000-0000-0000-000000000000", ip=f"10.0.1.{i + 1}", synced="")
               for i, n in enumerate(names)]
    result = inventory(devices, ansible_host_sources=["primaryLocalIpAddress"])
    assert sorted(result.hosts) == hosts
    assert sorted(r["host"] for r in result.summary["renamed"]) == renamed
    assert all(set(r) == {"uuid", "display_name", "host"} for r in result.summary["renamed"])
    assert (inventory(list(reversed(devices)), ansible_host_sources=["primaryLocalIpAddress"]).hosts
            == result.hosts), "the server's order must not change a name"
    if renamed:
        assert any("renamed" in w for w in result.warnings)


# --- clones -----------------------------------------------------------------------------------------------------
OLD, NEW = "2026-01-01T10:00:00Z", "2026-02-01T10:00:00.123456789Z"
CLONES = [
    ("same BIOS uuid", {"hardwareProfiles": hardware(bios_uuid="99AAEECC-2C47-12CC-F85C-A0080C7BDC23")},
     {"hardwareProfiles": hardware(bios_uuid="99aaeecc-2c47-12cc-f85c-a0080c7bdc23")}, "BIOS uuid"),
    ("same BIOS serial and manufacturer", {"hardwareProfiles": hardware(serial="MP10DQAF", maker="LENOVO")},
     {"hardwareProfiles": hardware(serial="MP10DQAF", maker="LENOVO")}, "BIOS serial MP10DQAF (LENOVO)"),
    ("a shared MAC address", {"hardwareProfiles": hardware(mac="24:3A:21:52:41:53")},
     {"hardwareProfiles": hardware(mac="24-3a-21-52-41-53")}, "MAC 24:3a:21:52:41:53"),
    ("same display name at the same address after re-imaging", {"displayName": "same"}, {"displayName": "same"},
     "display name 'same' at 10.0.1.1"),
]
NOT_CLONES = [
    ("placeholder BIOS uuid", hardware(bios_uuid="00000000-0000-0000-0000-000000000000")),
    ("placeholder serial", hardware(serial="To be filled by O.E.M.", maker="ASUS")),
    ("serial without manufacturer", hardware(serial="MP10DQAF")),
    ("locally administered MAC (docker, VPN)", hardware(mac="02:42:ac:11:00:02")),
]


@pytest.mark.parametrize(("first", "second", "machine"), [c[1:] for c in CLONES], ids=[c[0] for c in CLONES])
def test_clones_are_one_host_the_most_recently_synced(first: dict, second: dict, machine: str) -> None:
    old = device("old-name", "11111111-0000-0000-0000-000000000000", synced=OLD, **first)
    new = device("new-name", "22222222-0000-0000-0000-000000000000", synced=NEW, **second)
    if "displayName" not in first:
        new["primaryLocalIpAddress"] = "10.0.1.2"
    result = inventory([new, old])
    assert [v["eset_uuid"] for v in result.hosts.values()] == [new["uuid"]]
    (clone,) = result.summary["clones"]
    assert clone == {"machine": clone["machine"], "kept": new["uuid"], "others": [old["uuid"]]}
    assert clone["machine"].startswith(machine)
    assert [d["uuid"] for d in result.summary["left_out"]] == [old["uuid"]]
    assert "clone of 22222222" in result.summary["left_out"][0]["reason"]
    assert any("listed more than once" in w for w in result.warnings)
    everything = inventory([new, old], clones="all")
    assert len(everything.hosts) == 2 and len(everything.summary["clones"]) == 1
    assert everything.summary["left_out"] == []


@pytest.mark.parametrize("profiles", [c[1] for c in NOT_CLONES], ids=[c[0] for c in NOT_CLONES])
def test_placeholder_identities_make_no_clones(profiles: list) -> None:
    devices = [device(f"pc-{i}", f"{i}{i}{i}{i}0000-0000-0000-0000-000000000000", ip=f"10.0.1.{i}",
                      hardwareProfiles=profiles) for i in (1, 2)]
    result = inventory(devices)
    assert len(result.hosts) == 2 and result.summary["clones"] == []


def test_sync_time_reads_rfc3339_with_nanoseconds_and_offsets() -> None:
    assert sync_time({"lastSyncTime": "2026-02-01T10:00:00.123456789Z"}) == pytest.approx(1769940000.123456)
    assert sync_time({"lastSyncTime": "2026-02-01T12:00:00+02:00"}) == 1769940000.0
    assert sync_time({}) == 0.0 and sync_time({"lastSyncTime": "yesterday"}) == 0.0
    assert identities({"displayName": "x"}) == []


# --- ansible_host ---------------------------------------------------------------------------------------------
ADDRESSES = [
    ("primary address first", {}, {}, "10.0.1.1"),
    ("an excluded primary address falls back to the display name", {},
     {"ansible_host_exclude": ["10.0.0.0/16"]}, "web-01.example.lan"),
    ("a field path into the hardware profile", {"hardwareProfiles": [{"networkAdapters": [{"caption": "Host.LAN"}]}]},
     {"ansible_host_sources": ["hardwareProfiles.0.networkAdapters.0.caption"]}, "host.lan"),
    ("the public address", {"publicIpAddress": "2001:db8:0:0::1"}, {"ansible_host_sources": ["publicIpAddress"]},
     "2001:db8::1"),
    ("an expression entry", {}, {"ansible_host_sources": [{"expression": "eset_display_name + '.corp'"}]},
     "web-01.example.lan.corp"),
    ("the unspecified address is not usable", {"primaryLocalIpAddress": "0.0.0.0"}, {}, "web-01.example.lan"),
]


def fake_evaluate(expression: str, variables: t.Mapping[str, t.Any]) -> t.Any:
    assert expression == "eset_display_name + '.corp'"
    return variables["eset_display_name"] + ".corp"


@pytest.mark.parametrize(("extra", "options", "expected"), [c[1:] for c in ADDRESSES], ids=[c[0] for c in ADDRESSES])
def test_ansible_host_is_the_first_usable_source(extra: dict, options: dict, expected: str) -> None:
    result = inventory([device("web-01.example.lan", "33333333-0000-0000-0000-000000000000", **extra)],
                       fake_evaluate, **options)
    assert result.hosts["web-01.example.lan"]["ansible_host"] == expected


def test_a_device_without_a_usable_address_is_left_out_with_the_reasons() -> None:
    devices = [device("John's laptop", "44444444-0000-0000-0000-000000000000", ip="172.17.0.2"),
               device("ok", "55555555-0000-0000-0000-000000000000", ip="10.0.1.5")]
    result = inventory(devices, ansible_host_exclude=["172.17.0.0/16"])
    assert list(result.hosts) == ["ok"]
    (left,) = result.summary["left_out"]
    assert left["uuid"] == devices[0]["uuid"] and left["display_name"] == "John's laptop"
    assert "172.17.0.2 is in ansible_host_exclude 172.17.0.0/16" in left["reason"]
    assert "\"John's laptop\" is not an address or a host name" in left["reason"]
    assert any("1 device(s) left out" in w and "John's laptop" in w for w in result.warnings)


# --- variables, OS families, groups -----------------------------------------------------------------------------
FAMILIES = [(2, "linux", True), ("2", "linux", True), (1, "windows", False), ("3", "macos", False),
            (7, "unix", False), (0, "unknown", False), (None, "unknown", False), ("x", "unknown", False)]


@pytest.mark.parametrize(("family_id", "family", "probe"), FAMILIES)
def test_os_family_from_family_id_number_or_int64_string(family_id: t.Any, family: str, probe: bool) -> None:
    result = inventory([device("d", "66666666-0000-0000-0000-000000000000", family=family_id)])
    variables = result.hosts["d"]
    assert (variables["eset_os_family"], variables["epns_probe_supported"]) == (family, probe)
    assert result.members[f"eset_os_{family}"] == ["d"]
    assert os_family({"operatingSystem": {"familyId": family_id}}) == family


AGENTS = [
    ([{"name": "ESET_MANAGEMENT_AGENT", "version": {"name": "12.0.1.0"}}], "12.0.1.0"),
    ([{"displayName": "ESET Management Agent", "version": {"major": 11, "minor": 5, "patch": 3}}], "11.5.3"),
    ([{"name": "ESET_ENDPOINT_SECURITY", "version": {"name": "10.1"}}], None),
    ([], None),
]


@pytest.mark.parametrize(("components", "version"), AGENTS)
def test_agent_version_from_deployed_components(components: list, version: t.Optional[str]) -> None:
    assert agent_version({"deployedComponents": components}) == version


def test_host_variables_are_the_contract_names() -> None:
    result = inventory([device("web", "77777777-0000-0000-0000-000000000000", publicIpAddress="203.0.113.9",
                               tags=["prod"], functionalityStatus="DEVICE_FUNCTIONALITY_STATUS_OK",
                               deviceType="DEVICE_TYPE_SERVER", deviceToken="secret-device-token")])
    variables = result.hosts["web"]
    assert set(variables) == {"ansible_host", "eset_uuid", "eset_display_name", "eset_group_path", "eset_group_uuid",
                              "eset_last_sync", "eset_public_ip", "eset_local_ip", "eset_os_family", "eset_os_name",
                              "eset_agent_version", "eset_functionality_status", "eset_tags", "eset_device_type",
                              "epns_probe_supported"}
    assert variables["eset_group_path"] == "All/Linux/Servers" and variables["eset_tags"] == ["prod"]
    assert variables["eset_last_sync"] == "2026-01-01T10:00:00Z" and variables["eset_public_ip"] == "203.0.113.9"
    assert "deviceToken" not in without_private_fields({"deviceToken": "x", "uuid": "y"})


def test_the_group_tree_by_path_each_a_child_of_its_parent() -> None:
    result = inventory([device("web", "88888888-0000-0000-0000-000000000000"),
                        device("lost", "99999999-0000-0000-0000-000000000000", ip="10.0.9.9", group=LOST)])
    assert result.groups == {"eset_All": None, "eset_All_Linux": "eset_All", "eset_All_Linux_Servers": "eset_All_Linux",
                             "eset_All_Lost___found": "eset_All", "eset_All_Windows": "eset_All",
                             "eset_os_linux": None}
    assert result.members["eset_All_Linux_Servers"] == ["web"] and result.members["eset_All_Lost___found"] == ["lost"]
    assert set(inventory([], group_prefix="esmc_").groups) >= {"esmc_All", "esmc_All_Linux_Servers"}


FILTERS = [
    ("a path without the root, with its subgroups", {"group_paths": ["Linux"]}, ["linux-1"], []),
    ("a full path", {"group_paths": ["All/Windows"]}, ["win-1"], []),
    ("a missing path: the others still listed", {"group_paths": ["All/Nowhere", "All/Windows"]}, ["win-1"],
     ["All/Nowhere"]),
    ("only missing paths: nothing listed", {"group_paths": ["Nowhere"]}, [], ["Nowhere"]),
    ("OS families", {"os_families": ["windows"]}, ["win-1"], []),
]


@pytest.mark.parametrize(("options", "hosts", "missing"), [c[1:] for c in FILTERS], ids=[c[0] for c in FILTERS])
def test_group_path_and_os_family_filters(options: dict, hosts: t.List[str], missing: t.List[str]) -> None:
    devices = [device("linux-1", "aaaaaaaa-0000-0000-0000-000000000001"),
               device("win-1", "aaaaaaaa-0000-0000-0000-000000000002", ip="10.0.4.1", family=1, group=WINDOWS)]
    result = inventory(devices, **options)
    assert sorted(result.hosts) == hosts
    assert result.summary["missing_group_paths"] == missing
    assert result.summary["devices_listed"] == 2
    for path in missing:
        (warning,) = [w for w in result.warnings if path in w]
        assert "known: All, All/Linux, All/Linux/Servers" in warning


BAD_OPTIONS = [
    ({"ansible_host_exclude": ["10.0.0.0/33"]}, "'10.0.0.0/33' is not a network in CIDR notation"),
    ({"os_families": ["beos"]}, "os_families: 'beos' not one of windows, linux"),
    ({"clones": "oldest"}, "clones: 'oldest' is not one of newest, all"),
    ({"ansible_host_sources": ["bad path!"]}, "ansible_host_sources: 'bad path!' is neither a device field path"),
    ({"ansible_host_sources": [{"expr": "x"}]}, "{'expr': 'x'} is neither"),
    ({"group_prefix": "eset-"}, "group_prefix: 'eset-' may hold only letters"),
    ({"group_paths": "All"}, "group_paths: 'All' is not a list"),
]


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS)
def test_bad_options_name_the_value(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=None) as caught:
        inventory_options(options)
    assert message in str(caught.value)
