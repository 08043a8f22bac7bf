"""The ``epns`` action group (meta/runtime.yml) holds every module that takes the ESET PROTECT API options, so one
``module_defaults: {group/protectnet.epns.epns: {...}}`` block gives the connection to all of them (issue 12)."""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._argspec import eset_api_argument_spec

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if not p.stem.startswith("_"))


def group() -> list:
    return yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())["action_groups"]["epns"]


def takes_the_api_options(name: str) -> bool:
    module = importlib.import_module(f"ansible_collections.protectnet.epns.plugins.modules.{name}")
    spec = module.argument_spec() if hasattr(module, "argument_spec") else None
    if spec is None:
        return "eset_api_argument_spec()" in (ROOT / "plugins" / "modules" / f"{name}.py").read_text()
    return set(eset_api_argument_spec()) <= set(spec)


@pytest.mark.parametrize("name", [m for m in MODULES if takes_the_api_options(m)])
def test_every_module_with_the_api_options_is_in_the_epns_group(name: str) -> None:
    assert name in group()


def test_wol_multicast_is_one_of_them() -> None:
    assert takes_the_api_options("wol_multicast") and "wol_multicast" in group()
