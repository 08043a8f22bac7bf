"""The guard around every unit test (conftest.py's _host_files_untouched) sees every way a test could change a
file of this machine: its content, its mode, its owner, or the file being replaced by a link."""
from __future__ import annotations

import os
from pathlib import Path

from _host_files import host_files


def test_the_snapshot_sees_content_mode_owner_and_type(tmp_path: Path) -> None:
    conf = tmp_path / "nftables.conf"
    conf.write_text("flush ruleset\n")
    conf.chmod(0o755)
    patterns = (str(tmp_path / "*"),)
    before = host_files(patterns)

    conf.chmod(0o644)  # the mode alone: mtime and size stay
    assert host_files(patterns) != before
    conf.chmod(0o755)
    assert host_files(patterns) == before

    stat = conf.stat()
    if os.geteuid() == 0:  # only root can give a file away
        os.chown(conf, stat.st_uid, stat.st_gid + 1)
        assert host_files(patterns) != before
        os.chown(conf, stat.st_uid, stat.st_gid)
        assert host_files(patterns) == before

    conf.write_text("flush rulesex\n")  # same size, and the old mtime put back: only the bytes differ
    os.utime(conf, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert host_files(patterns) != before
    conf.write_text("flush ruleset\n")
    os.utime(conf, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert host_files(patterns) == before

    conf.unlink()
    conf.symlink_to(tmp_path / "elsewhere")  # a link where the file was
    assert str(conf) in host_files(patterns) and host_files(patterns) != before
