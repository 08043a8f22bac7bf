"""The refresh job (_refresh.refresh) when one address family does not answer: the failed family keeps its last
known addresses (and the job says so); only a successful answer replaces a set."""
from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from ansible_collections.protectnet.epns.plugins.module_utils._firewall import _backends, _refresh, _rollback
from ansible_collections.protectnet.epns.plugins.module_utils._firewall._base import FirewallBackend, Plan
from ansible_collections.protectnet.epns.plugins.module_utils._firewall._model import (
    FirewallError,
    Policy,
    PolicySpec,
    State,
)
from ansible_collections.protectnet.epns.plugins.module_utils._host._files import FileChange
from ansible_collections.protectnet.epns.plugins.module_utils._host._run import Runner

OLD4, NEW4 = "198.18.1.10", "198.18.1.11"
OLD6, NEW6 = "2001:db8:0:1::10", "2001:db8:0:1::11"
CONFIG = {"backend": "fake", "persist": False, "options": {},
          "policy": PolicySpec(host="epns.eset.com", ports=(8883,)).as_dict()}


class FakeBackend(FirewallBackend):
    """One set per family; remembers what refresh() applied."""

    name = "fake"
    installed = State(sets={"epns_v4": frozenset({f"{OLD4}/32"}), "epns_v6": frozenset({f"{OLD6}/128"})})
    applied: t.ClassVar[t.List[State]] = []

    @classmethod
    def detect(cls, runner: Runner) -> t.Any:
        raise AssertionError("not used")

    def read_current(self) -> State:
        return self.installed

    def compute_desired(self, policy: Policy, current: State) -> State:
        group = policy.groups[0]
        return State(sets={"epns_v4": frozenset(group.ipv4), "epns_v6": frozenset(group.ipv6)})

    def plan(self, current: State, desired: State) -> Plan:
        FakeBackend.applied.append(desired)
        return Plan()

    def persist(self, desired: State, planned: t.Any = None) -> t.List[FileChange]:
        return []


@pytest.fixture(autouse=True)
def fake_backend(monkeypatch: pytest.MonkeyPatch, tmp_path: t.Any) -> None:
    monkeypatch.setattr(_backends, "make_backend", lambda name, runner, options: FakeBackend(runner, options))
    monkeypatch.setattr(_rollback, "pending", functools.partial(_rollback.pending, str(tmp_path / "rollback")))
    FakeBackend.applied = []


def resolver(answers: t.Mapping[int, t.Union[str, int]]) -> t.Callable[..., t.Any]:
    """getaddrinfo that answers per family: an address, or a gaierror code (EAI_AGAIN: the query timed out)."""
    def getaddrinfo(host: str, port: t.Any, family: int = 0, *args: t.Any) -> t.List[t.Any]:
        families = [family] if family else [socket.AF_INET, socket.AF_INET6]
        found = []
        for fam in families:
            answer = answers[fam]
            if isinstance(answer, int):
                if family:
                    raise socket.gaierror(answer, "failure")
                continue  # AF_UNSPEC: glibc returns what the other family answered
            found.append((fam, socket.SOCK_STREAM, 6, "", (answer, 0)))
        if not found:
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return found
    return getaddrinfo


def _sets() -> t.Dict[str, t.FrozenSet[str]]:
    assert len(FakeBackend.applied) == 1, FakeBackend.applied
    return FakeBackend.applied[0].sets


@pytest.mark.parametrize("failed, kept, answered, new", [
    (socket.AF_INET6, "epns_v6", "epns_v4", f"{NEW4}/32"),
    (socket.AF_INET, "epns_v4", "epns_v6", f"{NEW6}/128"),
])
def test_a_family_that_fails_keeps_its_last_known_set(failed: int, kept: str, answered: str, new: str) -> None:
    other = socket.AF_INET if failed == socket.AF_INET6 else socket.AF_INET6
    answers: t.Dict[int, t.Union[str, int]] = {failed: socket.EAI_AGAIN, other: new.split("/")[0]}
    result = _refresh.refresh(CONFIG, runner=None, resolver=resolver(answers))
    assert _sets()[kept] == FakeBackend.installed.sets[kept]  # not emptied
    assert _sets()[answered] == frozenset({new})  # the family that answered is replaced
    family = "IPv6" if failed == socket.AF_INET6 else "IPv4"
    assert any(f"{family} addresses of 'epns.eset.com' kept" in w for w in result["warnings"]), result


def test_an_answer_without_addresses_of_a_family_does_replace_it() -> None:
    """NODATA is an answer (the name has no AAAA any more), not a failure."""
    answers: t.Dict[int, t.Union[str, int]] = {socket.AF_INET: NEW4, socket.AF_INET6: socket.EAI_NODATA}
    result = _refresh.refresh(CONFIG, runner=None, resolver=resolver(answers))
    assert _sets() == {"epns_v4": frozenset({f"{NEW4}/32"}), "epns_v6": frozenset()}
    assert not result["warnings"]


def test_both_families_failing_changes_nothing() -> None:
    answers: t.Dict[int, t.Union[str, int]] = {socket.AF_INET: socket.EAI_AGAIN, socket.AF_INET6: socket.EAI_AGAIN}
    with pytest.raises(FirewallError, match=r"cannot resolve 'epns\.eset\.com'"):
        _refresh.refresh(CONFIG, runner=None, resolver=resolver(answers))
    assert FakeBackend.applied == []



def test_a_change_waiting_for_its_confirmation_makes_the_refresh_wait(tmp_path: t.Any) -> None:
    os.makedirs(tmp_path / "rollback" / "20260101T000000-abcd")
    (tmp_path / "rollback" / "20260101T000000-abcd" / "armed").write_text("1")
    result = _refresh.refresh(CONFIG, runner=None, resolver=resolver({socket.AF_INET: NEW4, socket.AF_INET6: NEW6}))
    assert result == {"changed": False, "msg": "a firewall change is waiting for its confirmation; not refreshing"}
    assert FakeBackend.applied == []


def _install_library(monkeypatch: pytest.MonkeyPatch, lib: Path) -> t.List[FileChange]:
    """Write the library part of job_files() under lib, as the module does under /etc/protectnet_epns/lib."""
    monkeypatch.setattr(_refresh, "LIB_DIR", str(lib))
    files, _before, _after = _refresh.job_files(True, CONFIG, sys.executable, 15)
    library = [f for f in files if f.path.startswith(str(lib) + os.sep)]
    for change in library:
        change.write()
    return library


def test_the_installed_copy_runs_with_plain_python_outside_ansible(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    """The copy holds _firewall and the _host layer it imports; -I -S: no collection, no Ansible, no site-packages.
    An unknown backend stops the job after it has imported the engine and every backend, before any command."""
    lib = tmp_path / "lib"
    installed = {str(Path(f.path).relative_to(lib)) for f in _install_library(monkeypatch, lib)}
    assert {"protectnet_epns/__init__.py", "protectnet_epns/_firewall/_refresh.py", "protectnet_epns/_host/_run.py",
            "protectnet_epns/_host/_files.py", "protectnet_epns/_host/__init__.py"} <= installed, installed
    entry = tmp_path / "refresh.py"
    entry.write_text(_refresh.entry_script(sys.executable))
    config = tmp_path / "firewall.json"
    config.write_text(json.dumps(dict(CONFIG, backend="no-such-backend")))
    done = subprocess.run([sys.executable, "-I", "-S", str(entry), "--config", str(config)], capture_output=True,
                          text=True, timeout=60, check=False, cwd=str(tmp_path))
    assert done.returncode == 1, done
    assert done.stderr.startswith("protectnet_epns refresh: backend 'no-such-backend' is unknown"), done.stderr


def test_an_earlier_flat_copy_is_removed_when_the_job_is_installed_again(monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Path) -> None:
    old = tmp_path / "lib" / "protectnet_epns_firewall"
    old.mkdir(parents=True)
    for name in ("__init__.py", "_refresh.py", "_base.py"):
        (old / name).write_text("# an earlier version\n")
    library = _install_library(monkeypatch, tmp_path / "lib")
    removed = sorted(Path(f.path).name for f in library if f.content is None)
    assert removed == ["__init__.py", "_base.py", "_refresh.py"]
    assert not old.exists() or not any(old.iterdir())
    files, _before, _after = _refresh.job_files(False, CONFIG, sys.executable, 15)
    gone = {f.path for f in files if f.content is None}
    assert {f.path for f in library if f.content is not None} <= gone  # state=absent removes the new layout too
