"""eset_calibrate against the ESET PROTECT emulator (issue 15): a sentinel policy seeded at node paths unlike the
built-in map's, in format 1 and format 2, is found with its product id and node paths; the overrides file is then
taken by agent_proxy_policy (which writes the proxy at the learnt paths) and wol_multicast; nothing secret leaves
the module; what is not there is reported "not found"; bad input is named."""
from __future__ import annotations

import base64
import json
import typing as t
from pathlib import Path

import pytest
import yaml
from _emulator import PASSWORD, Emulator, control, emulator_fixture, reset, scanned
from _module_run import ModuleRun
from ansible_collections.protectnet.epns.plugins.module_utils._eset_policy import _codec as codec
from ansible_collections.protectnet.epns.plugins.modules import agent_proxy_policy, eset_calibrate, wol_multicast
from emulator.policydata import format1, format2

PRODUCT = "eset.local.products.management-agent"  # unlike the built-in guess, so learning it is visible
SECTION = "era_agent"
HOST, PORT = "calibrate-proxy.invalid", 39031
REPLICATION = {"host": "calibrate-replication.invalid", "port": 39032}
PROXY_PASSWORD = "Pr0xy-S3cret-Value"  # a seeded policy secret that must not leave the module
WOL_PATH = "server.wolSettings.multicastTargets"


def leaf(ce_type: int, value: t.Any) -> t.Dict[str, t.Any]:
    return {"ce_flags": 4, "ce_type": ce_type, "ce_value": value}


def sentinel_tree(with_sentinels: bool = True) -> t.Dict[str, t.Any]:
    host, port = (HOST, PORT) if with_sentinels else ("bridge.example.lan", 3128)
    return {"Network": {"ce_flags": 0, "Proxy": {
        "ce_flags": 0, "ConfigurationMode": leaf(2, 3), "GoDirectWhenUnavailable": leaf(9, 1),
        "AllServices": {"ce_flags": 0, "Enabled": leaf(9, 1), "Address": leaf(8, host), "TcpPort": leaf(3, port),
                        "Login": leaf(8, "proxy-admin"), "Password": leaf(8, PROXY_PASSWORD)},
        "Replication": {"ce_flags": 0, "Enabled": leaf(9, 1), "Address": leaf(8, REPLICATION["host"]),
                        "TcpPort": leaf(3, REPLICATION["port"])}}},
        "Connection": {"ce_flags": 0, "ConnectionInterval": leaf(2, 600)}}


def sentinel_policy(name: str, fmt: str, with_sentinels: bool = True) -> t.Dict[str, t.Any]:
    tree = sentinel_tree(with_sentinels)
    data = format1(SECTION, tree) if fmt == "1" else format2(SECTION, "13.0", tree, member="agent.proxy.settings.lzma")
    return {"displayName": name, "features": [{
        "featureId": 4294967295, "flags": {}, "configuration": {
            "@type": "type.googleapis.com/Era.Common.DataDefinition.Policy.PolicyData", "product": PRODUCT,
            "data": data}}]}


emulator = emulator_fixture("onprem")


@pytest.fixture
def emu(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    reset(emulator, monkeypatch)
    control(emulator, "POST", "seed", {
        "policies": [sentinel_policy("Calibration f1", "1"), sentinel_policy("Calibration f2", "2"),
                     sentinel_policy("No sentinels", "1", with_sentinels=False)],
        "configuration": {"server": {"wolSettings": {"multicastTargets": ["239.255.0.9"]},
                                     "smtp": {"password": "Smtp-S3cret-Value"}}}})
    return emulator


@pytest.fixture
def run(run_module: ModuleRun) -> ModuleRun:
    scanned(run_module)
    run_module.never_prints(PROXY_PASSWORD)
    return run_module


def api(emu: Emulator, **extra: t.Any) -> t.Dict[str, t.Any]:
    out = {"server": "127.0.0.1", "port": int(emu.url.rsplit(":", 1)[1]), "ca_path": emu.ca_path,
           "username": "api-user", "password": PASSWORD}
    out.update(extra)
    return out


def writes(emu: Emulator) -> t.List[str]:
    return [f"{r['method']} {r['path']}" for r in emu.requests
            if r["method"] != "GET" and r["path"] not in ("/GetTokens", "/v2/configuration:batchGetValues")]


def by_item(result: t.Mapping[str, t.Any]) -> t.Dict[str, t.Dict[str, t.Any]]:
    return {entry["item"]: entry for entry in result["findings"]}


@pytest.mark.parametrize("fmt", ["1", "2"])
def test_the_sentinel_policy_gives_the_product_and_the_node_paths(emu: Emulator, run: ModuleRun, fmt: str) -> None:
    result = run(eset_calibrate, api(emu, policy=f"Calibration f{fmt}", service_sentinels={"replication": REPLICATION},
                                     sentinel_mode="global"), check=True)
    assert result.get("failed") is not True, result.get("msg")
    assert result["changed"] is False and writes(emu) == []
    learnt = result["agent_policy"]
    top = "Network/Proxy" if fmt == "1" else "Settings/Network/Proxy"  # a format 2 member nests under Settings
    assert result["product"] == learnt["product"] == PRODUCT and learnt["section"] == SECTION
    assert learnt["services"]["global"] == {
        "host": {"path": f"{top}/AllServices/Address", "ce_type": 8},
        "port": {"path": f"{top}/AllServices/TcpPort", "ce_type": 3},
        "use": {"path": f"{top}/AllServices/Enabled", "ce_type": 9}}
    assert learnt["services"]["replication"]["host"]["path"] == f"{top}/Replication/Address"
    assert learnt["proxy_mode"]["path"] == f"{top}/ConfigurationMode"
    assert learnt["proxy_mode"]["values"]["global"] == 3
    assert learnt["fallback_direct"] == {"path": f"{top}/GoDirectWhenUnavailable", "ce_type": 9}
    assert learnt["confirmed"] is True and result["map_confirmed"] is True and result["map_error"] is None
    found = by_item(result)
    assert found["proxy_mode.values.per_service"]["status"] == "not found"
    assert found["wake_on_lan.addresses_path"] == dict(found["wake_on_lan.addresses_path"], status="confirmed",
                                                       value=WOL_PATH)
    assert result["wake_on_lan"] == {"addresses_path": WOL_PATH, "confirmed": True}
    text = json.dumps(result)
    for secret in (PROXY_PASSWORD, PASSWORD, "Smtp-S3cret-Value"):
        assert secret not in text
    assert "api-user" not in json.dumps(result["transcript"])


def test_the_overrides_file_is_taken_by_agent_proxy_policy_and_wol_multicast(emu: Emulator, run: ModuleRun,
                                                                            tmp_path: Path) -> None:
    learnt = run(eset_calibrate, api(emu, policy="Calibration f1"))
    overrides = tmp_path / "eset-calibration.yml"
    overrides.write_text("# comment as the playbook writes it\n" + yaml.safe_dump(learnt["overrides"]))
    made = run(agent_proxy_policy, api(emu, name="EPNS via calibrated map", proxy_host="bridge.example.com",
                                       proxy_port=3128, settings_map_file=str(overrides)))
    assert made.get("failed") is not True, made.get("msg")
    assert made["map_confirmed"] is True and made["policy"]["product"] == PRODUCT
    stored = next(p for p in control(emu, "GET", "state")["policies"] if p["displayName"] == "EPNS via calibrated map")
    data = codec.decode(stored["features"][0]["configuration"]["data"])
    flat = codec.flatten(data.sections())
    assert flat[f"{SECTION}/Network/Proxy/AllServices/Address"] == "bridge.example.com"
    assert flat[f"{SECTION}/Network/Proxy/AllServices/TcpPort"] == "3128"
    assert flat[f"{SECTION}/Network/Proxy/AllServices/Enabled"] == "1"
    assert flat[f"{SECTION}/Network/Proxy/ConfigurationMode"] == "3"
    assert flat[f"{SECTION}/Network/Proxy/GoDirectWhenUnavailable"] == "1"
    wol = run(wol_multicast, {"api_urls": {"business-account": emu.url, "configuration": emu.url},
                              "ca_path": emu.ca_path, "username": "api-user", "password": PASSWORD,
                              "destinations": ["239.255.0.9"], "host_network": False,
                              "settings_map_file": str(overrides)})
    assert wol.get("failed") is not True, wol.get("msg")
    assert wol["map_confirmed"] is True and wol["server"]["setting"] == WOL_PATH
    assert wol["server"]["current"] == ["239.255.0.9"] and wol["server"]["in_sync"] is True


def test_what_is_not_there_is_marked_not_found(emu: Emulator, run: ModuleRun) -> None:
    result = run(eset_calibrate, api(emu, policy="No sentinels", wol_candidates=["server.nothing.here"],
                                     wol_discover=False))
    assert result.get("failed") is not True, result.get("msg")
    found = by_item(result)
    for name in ("services.global.host", "services.global.port", "proxy_mode", "fallback_direct",
                 "wake_on_lan.addresses_path", "epns"):
        assert found[name]["status"] == "not found", name
    assert "calibrate-proxy.invalid" in found["services.global.host"]["note"]
    assert result["map_confirmed"] is False and result["agent_policy"]["confirmed"] is False
    assert result["wake_on_lan"] == {}
    assert result["wake_on_lan_candidates"][0]["exists"] is False
    assert result["wake_on_lan_candidates"][0]["answer"].startswith("HTTP 404")


def test_a_sentinel_in_two_nodes_is_ambiguous(emu: Emulator, run: ModuleRun) -> None:
    """The replication service holds the same sentinels as the global proxy: which one is global cannot be told."""
    result = run(eset_calibrate, api(emu, policy="Calibration f1", sentinel_host=REPLICATION["host"],
                                     sentinel_port=REPLICATION["port"], service_sentinels={
                                         "eset_services": {"host": HOST, "port": PORT}}))
    assert result.get("failed") is not True, result.get("msg")
    tree = sentinel_tree()
    tree["Network"]["Proxy"]["AllServices"].update(Address=leaf(8, HOST), TcpPort=leaf(3, PORT))
    tree["Network"]["Proxy"]["Replication"].update(Address=leaf(8, HOST), TcpPort=leaf(3, PORT))
    twice = sentinel_policy("Twice", "1")
    twice["features"][0]["configuration"]["data"] = format1(SECTION, tree)
    control(emu, "POST", "seed", {"policies": [twice]})
    found = by_item(run(eset_calibrate, api(emu, policy="Twice")))
    assert found["services.global.host"]["status"] == found["services.global.port"]["status"] == "ambiguous"
    assert "2 nodes" in found["services.global.host"]["note"]
    assert found["services.global.use"]["status"] == "not found"


@pytest.mark.parametrize(("extra", "words"), [
    ({"policy": "No such policy"}, ["'No such policy'", "no policy has this name", "No sentinels"]),
    ({"policy": "00000000-0000-4000-8000-000000000000"}, ["no policy with this uuid"]),
    ({"policy": "Calibration f1", "sentinel_port": 70000}, ["port 70000", "1-65535"]),
    ({"policy": "Calibration f1", "sentinel_host": "http://x"}, ["sentinel_host"]),
    ({"policy": "Calibration f1", "service_sentinels": {"replication": {"host": HOST, "port": 1}}},
     ["must differ", HOST]),
    ({"policy": "Calibration f1", "service_sentinels": {"all": {"host": "a.invalid", "port": 1}}},
     ["service_sentinels.all"]),
    ({"policy": "Calibration f1", "wol_candidates": ["server/wol"]}, ["'server/wol'", "dotted"]),
    ({"policy": " "}, ["policy must be"]),
])
def test_bad_input_is_named(emu: Emulator, run: ModuleRun, extra: t.Dict[str, t.Any], words: t.List[str]) -> None:
    failed = run(eset_calibrate, api(emu, **extra))
    assert failed.get("failed") is True
    for word in words:
        assert word in failed["msg"], failed["msg"]
    assert writes(emu) == []


def test_two_policies_with_the_name_ask_for_a_uuid(emu: Emulator, run: ModuleRun) -> None:
    control(emu, "POST", "seed", {"policies": [sentinel_policy("Calibration f1", "1")]})
    failed = run(eset_calibrate, api(emu, policy="Calibration f1"))
    assert failed.get("failed") is True and "2 policies have this name" in failed["msg"]


def test_the_secrets_are_scrubbed_also_where_the_codec_would_not_mask_them(emu: Emulator, run: ModuleRun) -> None:
    """A secret copied into a harmless-looking node is caught by the last-line scrub of the transcript."""
    tree = sentinel_tree()
    tree["Network"]["Proxy"]["AllServices"]["Note"] = leaf(8, f"old password was {PROXY_PASSWORD}")
    policy = sentinel_policy("Leaky", "1")
    policy["features"][0]["configuration"]["data"] = format1(SECTION, tree)
    control(emu, "POST", "seed", {"policies": [policy]})
    result = run(eset_calibrate, api(emu, policy="Leaky"))
    assert PROXY_PASSWORD not in json.dumps(result)
    assert base64.b64encode(PROXY_PASSWORD.encode()).decode() not in json.dumps(result)


def test_the_playbook_writes_an_overrides_file_the_loader_takes_and_a_transcript_without_secrets(
        emu: Emulator, tmp_path: Path) -> None:
    """protectnet.epns.calibrate as an administrator runs it (the broker part runs in the lab, see
    tests/integration/test_calibrate_lab.py): the API password comes from the environment."""
    import os
    import subprocess
    import sys

    from ansible_collections.protectnet.epns.plugins.module_utils._eset_policy._settings_map import (
        build_map,
        load_settings_file,
    )
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(repo / ".build" / "collections"),
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false", ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_HOME=str(tmp_path / ".ansible"), ANSIBLE_LOCAL_TEMP=str(tmp_path / ".tmp"),
               ANSIBLE_DEPRECATION_WARNINGS="false", ESET_PROTECT_USERNAME="api-user", ESET_PROTECT_PASSWORD=PASSWORD)
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        env.pop(name, None)
    extra = {"calibrate_policy": "Calibration f2", "calibrate_probe": False, "calibrate_dir": str(tmp_path),
             "ansible_python_interpreter": sys.executable,
             "calibrate_api": {"server": "127.0.0.1", "port": int(emu.url.rsplit(":", 1)[1]),
                               "ca_path": emu.ca_path}}
    done = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                           "-e", json.dumps(extra), "protectnet.epns.calibrate"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    overrides = tmp_path / "eset-calibration.yml"
    transcript = (tmp_path / "eset-calibration-transcript.yml").read_text()
    assert overrides.read_text().startswith("# protectnet.epns calibration of 127.0.0.1:")
    agent = load_settings_file(str(overrides), "agent_policy")
    assert agent["confirmed"] is True and build_map(agent)["product"] == PRODUCT
    assert load_settings_file(str(overrides), "wake_on_lan") == {"addresses_path": WOL_PATH, "confirmed": True}
    assert yaml.safe_load(overrides.read_text())["epns"] == {"probed": False}
    shared = yaml.safe_load(transcript)
    assert shared["read_only"] is True and shared["policy"]["name"] == "Calibration f2"
    assert any(v == codec.MASK for v in shared["policy"]["settings_flat"].values())
    for secret in (PASSWORD, PROXY_PASSWORD, "Smtp-S3cret-Value", "api-user"):
        assert secret not in transcript, secret
        assert secret not in done.stdout, secret
    assert writes(emu) == []
