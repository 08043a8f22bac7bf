"""The release artifact works on its own: built with ansible-galaxy, installed into a fresh virtualenv that has only
requirements.txt, it runs protectnet.epns.verify against the lab and gets the verdicts right.

The virtualenv is built with `pip install --no-index` from the wheels `make deps` downloads into .build/wheels: the
tests share the lab builder's network namespace, so they do not count on a registry while they run.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import pytest

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WHEELS = REPO / ".build" / "wheels"


def _run(argv: list, env: Dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)


def _clean_env() -> Dict[str, str]:
    """The caller's environment without anything that points at the checkout, its virtualenv or its collections."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANSIBLE_", "PYTHON", "VIRTUAL_ENV", "PIP_"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if Path(p) != BIN)
    return env


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    """Build the artifact, make a fresh virtualenv, install the requirements and the artifact into it."""
    if not any(WHEELS.glob("ansible_core-*.whl")):
        pytest.skip(f"no wheels in {WHEELS}: run `make deps` (it downloads requirements.txt there)")
    work = tmp_path_factory.mktemp("release")
    env = _clean_env()
    build = _run([BIN / "ansible-galaxy", "collection", "build", "--output-path", work, REPO], env)
    assert build.returncode == 0, build.stdout + build.stderr
    (tarball,) = work.glob("protectnet-epns-*.tar.gz")

    venv = work / "venv"
    # The base interpreter, not the project's virtualenv: nothing of .venv may leak into the fresh one.
    base = Path(getattr(sys, "_base_executable", sys.executable))
    made = _run([base, "-m", "venv", venv], env)
    assert made.returncode == 0, made.stderr
    pip = _run([venv / "bin" / "pip", "install", "-q", "--disable-pip-version-check", "--no-index",
                "--find-links", WHEELS, "-r", REPO / "requirements.txt"], env)
    assert pip.returncode == 0, pip.stdout + pip.stderr

    collections = work / "collections"
    env.update({
        "PATH": f"{venv / 'bin'}{os.pathsep}{env['PATH']}",
        "VIRTUAL_ENV": str(venv),
        "ANSIBLE_COLLECTIONS_PATH": str(collections),
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_NOCOLOR": "1",
    })
    install = _run([venv / "bin" / "ansible-galaxy", "collection", "install", "--offline", "-p", collections,
                    tarball], env)
    assert install.returncode == 0, install.stdout + install.stderr
    return {"venv": venv, "env": env, "collections": collections, "work": work}


def test_fresh_virtualenv_has_only_the_release(release: Dict[str, Any]) -> None:
    venv: Path = release["venv"]
    where = _run([venv / "bin" / "python", "-c", "import ansible, sys; print(ansible.__file__); print(sys.prefix)"],
                 release["env"])
    assert where.returncode == 0, where.stderr
    ansible_file, prefix = where.stdout.split()
    assert Path(ansible_file).is_relative_to(venv) and Path(prefix) == venv
    listed = _run([venv / "bin" / "ansible-galaxy", "collection", "list", "--format", "json"], release["env"])
    assert listed.returncode == 0, listed.stderr
    found = {path: names for path, names in json.loads(listed.stdout).items() if "protectnet.epns" in names}
    assert list(found) == [str(release["collections"] / "ansible_collections")], found
    installed = release["collections"] / "ansible_collections" / "protectnet" / "epns"
    assert not installed.is_symlink() and (installed / "MANIFEST.json").is_file()


def test_installed_verify_playbook_runs_against_the_lab(release: Dict[str, Any], lab: Any) -> None:
    healthy, degraded = lab.agents[:2]
    lab.fault(degraded, "block", port=8883)
    report_dir = release["work"] / "report"
    env = dict(release["env"], ANSIBLE_CONFIG=str(lab.ansible_cfg))
    done = _run([release["venv"] / "bin" / "ansible-playbook", "-i", lab.inventory, "protectnet.epns.verify",
                 "-e", json.dumps({"epns_targets": f"{healthy},{degraded}",
                                   "epns_verify_report_dir": str(report_dir)})], env, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert f"{healthy}: reachable" in done.stdout and f"{degraded}: degraded" in done.stdout, done.stdout[-3000:]

    for name in ("epns-report.md", "epns-report.html", "epns-report.json", "epns-report.junit.xml"):
        assert (report_dir / name).is_file(), name
    report = json.loads((report_dir / "epns-report.json").read_text())["report"]
    assert report["summary"] == {"reachable": 1, "degraded": 1, "unreachable": 0, "not_probed": 0, "total": 2}
    states = {row["host"]: row["state"] for row in report["phases"][0]["rows"]}
    assert states == {healthy: "reachable", degraded: "degraded"}
