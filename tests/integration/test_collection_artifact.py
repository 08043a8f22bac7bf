"""The built artifact is what users install: it must build, install, document itself and run."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Build the collection, install the tarball into an empty collections path, return that environment."""
    work = tmp_path_factory.mktemp("artifact")
    env = dict(os.environ)
    build = _run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(work), str(REPO)], env)
    assert build.returncode == 0, build.stderr
    tarballs = list(work.glob("protectnet-epns-*.tar.gz"))
    assert len(tarballs) == 1, tarballs
    target = work / "collections"
    # Only the fresh install may be visible: the checkout's own link would satisfy the install and the lookups.
    env["ANSIBLE_COLLECTIONS_PATH"] = str(target)
    env["ANSIBLE_COLLECTIONS_SCAN_SYS_PATH"] = "false"
    install = _run(
        [str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "-p", str(target), str(tarballs[0])], env
    )
    assert install.returncode == 0, install.stderr
    env["ANSIBLE_LOCALHOST_WARNING"] = "false"
    env["ANSIBLE_INVENTORY_UNPARSED_WARNING"] = "false"
    return env


def test_artifact_leaves_out_development_files(installed: dict[str, str]) -> None:
    root = Path(installed["ANSIBLE_COLLECTIONS_PATH"]) / "ansible_collections" / "protectnet" / "epns"
    assert (root / "plugins" / "modules" / "epns_probe.py").is_file()
    assert (root / "meta" / "runtime.yml").is_file()
    assert not (root / ".venv").exists()
    assert not (root / ".build").exists()


def test_ansible_doc_documents_the_probe_completely(installed: dict[str, str]) -> None:
    out = _run([str(BIN / "ansible-doc"), "--json", "protectnet.epns.epns_probe"], installed)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)["protectnet.epns.epns_probe"]
    options = doc["doc"]["options"]
    for name in ("host", "proxies", "timeout", "hold_seconds", "ca_path", "expected_issuer", "fail_on",
                 "client_cert", "client_key", "validate_certs"):
        assert name in options, name
        assert options[name].get("description"), name
    assert set(doc["doc"]["attributes"]) >= {"check_mode", "diff_mode", "action_group"}
    assert doc["doc"]["attributes"]["check_mode"]["support"] == "full"
    assert "protectnet.epns.epns_probe" in doc["examples"]
    for key in ("verdict", "verdict_reason", "paths", "dns"):
        assert key in doc["return"], key


def test_ansible_doc_documents_the_role(installed: dict[str, str]) -> None:
    out = _run([str(BIN / "ansible-doc"), "-t", "role", "--json", "protectnet.epns.epns_verify"], installed)
    assert out.returncode == 0, out.stderr
    entry = json.loads(out.stdout)["protectnet.epns.epns_verify"]
    options = entry["entry_points"]["main"]["options"]
    assert {"epns_verify_proxies", "epns_verify_fail_on", "epns_verify_report_dir"} <= set(options)


def test_module_defaults_group_reaches_the_probe(installed: dict[str, str], tmp_path: Path) -> None:
    # Nothing listens on loopback port 9: without the group defaults, fail_on would stay
    # 'unreachable' and the task would fail, and the ports would not be the ones set here.
    playbook = tmp_path / "group.yml"
    playbook.write_text(
        """
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/protectnet.epns.epns:
      host: 127.0.0.1
      server_name: epns.eset.com
      primary_port: 9
      fallback_port: 7
      fail_on: never
      timeout: 5
  tasks:
    - protectnet.epns.epns_probe:
      register: probe
    - ansible.builtin.assert:
        that:
          - probe.verdict == 'unreachable'
          - probe.paths | map(attribute='port') | list == [9, 7]
          - probe is not changed
"""
    )
    env = dict(installed, ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    out = _run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)], env)
    assert out.returncode == 0, out.stdout + out.stderr
