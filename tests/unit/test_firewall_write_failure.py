"""A file write that fails part-way through the persistence step leaves the disk as it was: the files written before
it are put back, and the directories they needed are removed again (the lab proof is test_firewall_atomic.py)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from ansible_collections.protectnet.epns.plugins.module_utils._firewall import _engine
from ansible_collections.protectnet.epns.plugins.module_utils._firewall._model import ApplyError
from ansible_collections.protectnet.epns.plugins.module_utils._host._files import FileChange
from ansible_collections.protectnet.epns.plugins.module_utils._host._run import SubprocessRunner


def _tree(root: Path) -> list:
    return sorted(str(p.relative_to(root)) + ("/" if p.is_dir() else "") for p in root.rglob("*"))


def test_a_failed_write_removes_the_directories_the_earlier_writes_created(tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("a file where a directory is needed\n")
    before = _tree(tmp_path)
    files = [FileChange(str(tmp_path / "saved" / "rules" / "rules.v4"), "*filter\nCOMMIT\n"),
             FileChange(str(tmp_path / "blocked" / "job"), "x\n")]
    with pytest.raises(ApplyError, match=r"writing .*/blocked/job failed"):
        _engine._write_files(_engine.RunPlan([], files), SubprocessRunner())
    assert _tree(tmp_path) == before


def test_a_directory_that_holds_something_else_stays(tmp_path: Path) -> None:
    files = [FileChange(str(tmp_path / "saved" / "rules.v4"), "x\n"), FileChange(str(tmp_path / "saved"), "y\n")]
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "host-own").write_text("kept\n")
    with pytest.raises(ApplyError):
        _engine._write_files(_engine.RunPlan([], files), SubprocessRunner())
    assert sorted(os.listdir(tmp_path / "saved")) == ["host-own"]
