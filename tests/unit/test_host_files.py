"""The one file writer (_host._files), as the firewall uses it through _base.file_change: a rewritten file keeps its
mode, owner and group; a new file gets the mode its FileChange names; putting a removed file back restores its mode
and owner too. The proxy and Wake-on-LAN tests check the same through their own code."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from ansible_collections.protectnet.epns.plugins.module_utils._firewall._base import file_change

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another owner needs root")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_rewriting_keeps_the_mode_of_the_file_found(tmp_path: Path) -> None:
    conf = tmp_path / "nftables.conf"
    conf.write_text("#!/usr/sbin/nft -f\nflush ruleset\n")
    conf.chmod(0o755)  # Debian ships /etc/nftables.conf executable
    file_change(str(conf), "#!/usr/sbin/nft -f\nflush ruleset\ninclude \"x\"\n").write()
    assert _mode(conf) == 0o755
    assert conf.read_text().endswith('include "x"\n')


@needs_root
@pytest.mark.parametrize(("name", "mode", "before", "after"), [
    ("rules.v4", 0o640, "*filter\nCOMMIT\n", "*filter\n-A OUTPUT -j ACCEPT\nCOMMIT\n"),
    ("protectnet-wol", 0o755, "#!/bin/sh\n", "#!/bin/sh\nexit 0\n"),  # an executable boot hook
])
def test_rewriting_keeps_owner_and_group(tmp_path: Path, name: str, mode: int, before: str, after: str) -> None:
    conf = tmp_path / name
    conf.write_text(before)
    conf.chmod(mode)
    os.chown(conf, 1234, 2345)
    file_change(str(conf), after).write()
    found = conf.stat()
    assert (found.st_uid, found.st_gid, _mode(conf)) == (1234, 2345, mode)


def test_a_new_file_gets_the_mode_asked_for(tmp_path: Path) -> None:
    new = tmp_path / "sub" / "ipsets"
    file_change(str(new), "create x hash:net\n", 0o640).write()
    assert _mode(new) == 0o640


@needs_root
def test_putting_a_removed_file_back_restores_mode_and_owner(tmp_path: Path) -> None:
    conf = tmp_path / "direct.xml"
    conf.write_text("<direct/>\n")
    conf.chmod(0o600)
    os.chown(conf, 1234, 2345)
    change = file_change(str(conf), None)
    change.write()
    assert not conf.exists()
    change.restore()
    found = conf.stat()
    assert conf.read_text() == "<direct/>\n"
    assert (found.st_uid, found.st_gid, _mode(conf)) == (1234, 2345, 0o600)


def test_restoring_a_created_file_removes_it(tmp_path: Path) -> None:
    new = tmp_path / "new.nft"
    change = file_change(str(new), "table inet x\n")
    change.write()
    change.restore()
    assert not new.exists()


def test_a_change_records_what_it_found(tmp_path: Path) -> None:
    conf = tmp_path / "nftables.conf"
    conf.write_text("flush ruleset\n")
    conf.chmod(0o751)
    change = file_change(str(conf), "flush ruleset\n# more\n")
    assert change.found is not None and change.found.mode == 0o751
    assert file_change(str(tmp_path / "absent"), "x").found is None
