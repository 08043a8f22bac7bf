"""The managed-host Python floor: on a Python older than 3.8 every module answers with one JSON failure that says
what to install, before it imports any collection code that needs 3.8 (docs/supported-versions.md)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from ansible_collections.protectnet.epns.plugins.module_utils import _python_floor

REPO = Path(__file__).resolve().parents[2]
MODULES = sorted(path for path in (REPO / "plugins" / "modules").glob("*.py")
                 if "from ansible.module_utils.basic import AnsibleModule" in path.read_text())
COLLECTION_UTILS = "ansible_collections.protectnet.epns.plugins.module_utils."

# ansible-core's own basic.py refuses old Pythons itself (2.18+: below 3.8), so it is imported on the real version;
# then the module runs as AnsiballZ runs it, as __main__, on a Python that says it is 3.6 (RHEL 8, SLES 15).
# Whatever collection module_utils got imported before the exit are reported on stderr.
RUN_AS_PYTHON_36 = """
import runpy, sys
import ansible.module_utils.basic
sys.version_info = (3, 6, 8, "final", 0)
try:
    runpy.run_path(sys.argv[1], run_name="__main__")
finally:
    sys.stderr.write("imported: " + " ".join(sorted(
        name for name in sys.modules if name.startswith(PREFIX) and not name.endswith("._python_floor"))))
""".replace("PREFIX", repr(COLLECTION_UTILS))


def run_as_python_36(module: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO / ".build" / "collections"))
    # An option no module has: code that passed the floor check would stop at AnsibleModule instead of probing.
    args = json.dumps({"ANSIBLE_MODULE_ARGS": {"not_an_option_of_any_module": True}})
    return subprocess.run([sys.executable, "-c", RUN_AS_PYTHON_36, str(module)], input=args, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_every_module_that_runs_on_a_host_is_checked() -> None:
    assert len(MODULES) >= 9, [m.name for m in MODULES]


@pytest.mark.parametrize("module", MODULES, ids=[m.stem for m in MODULES])
def test_module_refuses_python_36_with_the_step_to_take(module: Path) -> None:
    done = run_as_python_36(module)
    assert done.returncode == 1, (done.stdout, done.stderr)
    result = json.loads(done.stdout)
    assert result["failed"] is True
    message = result["msg"]
    assert "need Python 3.8 or newer on the managed host" in message
    assert "with Python 3.6.8 (" + sys.executable + ")" in message
    assert "dnf install python3.11" in message
    assert "zypper install python311" in message
    assert "ansible_python_interpreter=/usr/bin/python3.11" in message
    assert done.stderr.strip() == "imported:", "collection code imported before the floor check: " + done.stderr


@pytest.mark.parametrize("module", MODULES, ids=[m.stem for m in MODULES])
def test_module_calls_the_floor_check_right_after_ansible_module(module: Path) -> None:
    lines = [line.split("#")[0].strip() for line in module.read_text().splitlines()]
    basic = lines.index("from ansible.module_utils.basic import AnsibleModule")
    assert lines[basic + 1].startswith("from " + COLLECTION_UTILS + "_python_floor import")
    assert next(line for line in lines[basic + 2:] if line) == "require_supported_python()"


def test_message_names_the_python_found_and_the_steps() -> None:
    message = _python_floor.too_old_message((3, 6, 15, "final", 0), "/usr/libexec/platform-python")
    assert "this host ran the module with Python 3.6.15 (/usr/libexec/platform-python)" in message
    assert "dnf install python39" in message
    assert "SUSEConnect -p sle-module-python3" in message
    assert "docs/supported-versions.md" in message


def test_supported_python_passes(capsys: pytest.CaptureFixture) -> None:
    _python_floor.require_supported_python()
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("version", [(3, 7, 17, "final", 0), (2, 7, 18, "final", 0)])
def test_older_python_exits_with_one_json_failure(version: t.Tuple[t.Any, ...], capsys: pytest.CaptureFixture,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "version_info", version)
    with pytest.raises(SystemExit) as exited:
        _python_floor.require_supported_python()
    assert exited.value.code == 1
    result = json.loads(capsys.readouterr().out)
    assert result == {"failed": True, "msg": _python_floor.too_old_message(version, sys.executable)}
