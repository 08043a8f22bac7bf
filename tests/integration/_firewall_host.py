"""Whole-host snapshots and real failures for the firewall rollback and atomicity lab tests
(test_firewall_rollback_variants.py, test_firewall_atomic.py): the netfilter state whatever the backend, every entry
of /etc with its mode and owner, and a read-only bind mount inside one host's mount namespace."""
from __future__ import annotations

import contextlib
import re
import time
from typing import Any, Callable, Iterator

from _firewall import sh


def netfilter_snapshot(lab: Any, host: str) -> str:
    """Everything in the host's netfilter whatever the backend: nft ruleset (iptables-nft, firewalld, ufw), the
    legacy iptables of both families and the ipsets. Counters and ipset initvals are removed; tables are sorted
    (a firewalld reload or restart recreates `inet firewalld` behind the other tables)."""
    text = re.sub(r"counter packets \d+ bytes \d+", "counter", sh(lab, host, ["nft", "list", "ruleset"]))
    tables = sorted((c if c.startswith("table ") else "table " + c).rstrip("\n")
                    for c in text.split("\ntable ") if c.strip())
    parts = ["\n".join(tables)]
    for save in ("iptables-legacy-save", "ip6tables-legacy-save"):
        out = sh(lab, host, [save])
        parts.append("\n".join(re.sub(r" \[\d+:\d+\]$", "", line) for line in out.splitlines()
                               if not line.startswith("#")))
    parts.append(re.sub(r" initval 0x[0-9a-f]+", "", sh(lab, host, ["ipset", "save"])))
    return "\n".join(parts)


def etc_snapshot(lab: Any, host: str) -> str:
    """Every entry of the host's /etc with its type, mode, owner and group, and every file's checksum: byte and
    mode identity of everything the module could have written (directories it created included)."""
    return sh(lab, host, ["sh", "-c", "cd /etc && find . -printf '%y %m %u:%g %p\\n' | sort && "
                          "find . -type f -print0 | sort -z | xargs -0 md5sum"])


def wait_for(read: Callable[[], Any], expected: Any, seconds: float = 10.0) -> Any:
    """read() until it returns expected or seconds pass; the last value (for the assertion's message)."""
    deadline = time.monotonic() + seconds
    value = read()
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.3)
        value = read()
    return value


@contextlib.contextmanager
def read_only(lab: Any, host: str, path: str) -> Iterator[None]:
    """path (a file or a directory) read-only inside the host's own mount namespace, as a read-only bind mount: a
    real EROFS (or EBUSY for a rename over it) for root too. Only that host sees it; removed on exit."""
    sh(lab, host, ["mount", "--bind", path, path])
    try:
        sh(lab, host, ["mount", "-o", "remount,bind,ro", path])
        yield
    finally:
        sh(lab, host, ["umount", path])
