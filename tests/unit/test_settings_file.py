"""load_settings_file: one loader for today's bare settings map files and the calibration overrides file (issue 15),
used by agent_proxy_policy, wol_multicast and (later) the inventory plugin."""
from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.protectnet.epns.plugins.module_utils._eset_policy._settings_map import (
    MapError,
    load_settings_file,
)

OVERRIDES = """# written by protectnet.epns.calibrate
agent_policy:
  confirmed: true
  product: eset.local.products.management-agent
wake_on_lan:
  addresses_path: server.wolSettings.multicastTargets
  confirmed: true
epns: {probed: false}
calibrated_at: "2025-06-01T12:00:00Z"
server: protect.example.com:9443
"""


def write(tmp_path: Path, text: str, name: str = "map.yml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_bare_map_is_returned_as_it_is_for_either_section(tmp_path: Path) -> None:
    path = write(tmp_path, '{"product": "x.y", "confirmed": true}', "map.json")
    assert load_settings_file(path, "agent_policy") == {"product": "x.y", "confirmed": True}
    assert load_settings_file(path, "wake_on_lan") == {"product": "x.y", "confirmed": True}


def test_an_overrides_file_gives_the_section(tmp_path: Path) -> None:
    path = write(tmp_path, OVERRIDES)
    assert load_settings_file(path, "agent_policy") == {"confirmed": True,
                                                        "product": "eset.local.products.management-agent"}
    assert load_settings_file(path, "wake_on_lan")["addresses_path"] == "server.wolSettings.multicastTargets"


def test_an_overrides_file_without_the_section_keeps_the_built_in_map(tmp_path: Path) -> None:
    path = write(tmp_path, "calibrated_at: now\nagent_policy: {confirmed: false}\n")
    assert load_settings_file(path, "wake_on_lan") == {}


@pytest.mark.parametrize(("text", "section", "words"), [
    ("agent_policy: [1, 2]\ncalibrated_at: x\n", "agent_policy", ["agent_policy must be a mapping", "list"]),
    ("product: x\n", "inventory", ["unknown section 'inventory'", "agent_policy, wake_on_lan"]),
    ("- a\n- b\n", "agent_policy", ["must hold a mapping"]),
    ("a: [\n", "agent_policy", ["neither JSON nor YAML"]),
])
def test_bad_files_are_named(tmp_path: Path, text: str, section: str, words: list) -> None:
    with pytest.raises(MapError) as caught:
        load_settings_file(write(tmp_path, text), section)
    for word in words:
        assert word in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(MapError, match=r"settings_map_file .*nope\.yml"):
        load_settings_file(str(tmp_path / "nope.yml"), "agent_policy")
