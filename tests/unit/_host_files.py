"""The files of this machine that the code under test could write, as the unit tests' guard snapshots them.

A unit test drives the firewall, proxy and Wake-on-LAN code with fake commands, but its file writes are real: one
that forgot to point a path at tmp_path would change this machine. conftest.py compares a snapshot before and after
every test.
"""
from __future__ import annotations

import glob
import hashlib
import os
import stat
import typing as t

HOST_FILES = ("/etc/nftables.conf", "/etc/sysconfig/nftables.conf", "/etc/protectnet_epns/**", "/etc/iptables/*",
              "/etc/sysconfig/iptables", "/etc/sysconfig/ip6tables", "/etc/sysconfig/ipset", "/etc/firewalld/**",
              "/etc/ufw/*.rules", "/etc/cron.d/protectnet*", "/etc/systemd/system/protectnet*",
              "/etc/network/if-up.d/*", "/etc/NetworkManager/dispatcher.d/*", "/etc/networkd-dispatcher/**",
              "/etc/systemd/network/*", "/etc/squid/**", "/etc/apache2/**")


Entry = t.Tuple[int, int, int, int, int, str]


def host_files(patterns: t.Sequence[str] = HOST_FILES) -> t.Dict[str, Entry]:
    """path -> (type and mode, owner, group, size, mtime, sha256 of a regular file's bytes) of every match."""
    found: t.Dict[str, Entry] = {}
    for pattern in patterns:
        for name in glob.glob(pattern, recursive=True):
            try:
                info = os.lstat(name)
                digest = _sha256(name) if stat.S_ISREG(info.st_mode) else ""
            except OSError:
                continue
            found[name] = (info.st_mode, info.st_uid, info.st_gid, info.st_size, info.st_mtime_ns, digest)
    return found


def _sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()
