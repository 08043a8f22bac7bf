"""`make bench` part (c): the ESET PROTECT inventory of a large fleet, against the API emulator on loopback.

For each deployment: the API requests one `ansible-inventory --list` made, against the minimum (one login, then
the group list and the device list each in pages of the deployment's limit; for eset_agent_proxy the policy list,
the agent policies' assignments and the targeted dynamic groups' members: tests/emulator/minimum.py), and the
median time of uncached runs against cached ones (the jsonfile cache plugin; a cached run must make no request).
"""
from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
import typing as t
from pathlib import Path

import yaml
from _ansible import BIN, COLLECTIONS, REPO
from emulator import DEFAULT_USERS, Emulator
from emulator.client import connection, control
from emulator.minimum import inventory_requests

DEVICES = 10000
PAGE_LIMITS = {"onprem": 10000, "cloud": 1000}  # ESET-FACTS §3
REPEATS = 3


def _env() -> t.Dict[str, str]:
    env = dict(os.environ)
    env.update({"ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS), "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
                "ANSIBLE_NOCOLOR": "1", "ESET_PROTECT_USERNAME": "api-user",
                "ESET_PROTECT_PASSWORD": DEFAULT_USERS["api-user"]})
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        env.pop(name, None)
    return env


def _listing(config: Path) -> float:
    started = time.monotonic()
    argv = [str(BIN / "ansible-inventory"), "-i", str(config), "--list", "--export"]
    done = subprocess.run(argv, env=_env(), cwd=REPO,
                          capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"ansible-inventory failed (rc={done.returncode}):\n{done.stderr[-3000:]}")
    return elapsed


def _requests(emu: Emulator, config: Path) -> int:
    control(emu, "DELETE", "requests")
    _listing(config)
    return len(control(emu, "GET", "requests")["requests"])


def _one_deployment(deployment: str, work: Path, say: t.Callable[[str], None]) -> None:
    with Emulator(deployment) as emu:
        counts = control(emu, "POST", "fleet", {"devices": DEVICES, "seed": 1})["counts"]
        groups, devices = counts["groups"], counts["devices"]
        limit = PAGE_LIMITS[deployment]
        minimum = inventory_requests(control(emu, "GET", "state"), limit)
        base = {"plugin": "protectnet.epns.eset_protect", **connection(emu)}
        plain = work / f"{deployment}.eset_protect.yml"
        plain.write_text(yaml.safe_dump(base))
        cached = work / f"{deployment}-cached.eset_protect.yml"
        cached.write_text(yaml.safe_dump({**base, "cache": True, "cache_plugin": "ansible.builtin.jsonfile",
                                          "cache_connection": str(work / f"cache-{deployment}"),
                                          "cache_timeout": 3600}))
        made = _requests(emu, plain)
        say(f"(c) {deployment}, {devices} devices in {groups} groups: {made} API requests, minimum {minimum} "
            f"(goal: equal: {'met' if made == minimum else 'NOT met'})")
        _listing(cached)  # fills the cache
        uncached_s = statistics.median(_listing(plain) for _ in range(REPEATS))
        cached_s = statistics.median(_listing(cached) for _ in range(REPEATS))
        again = _requests(emu, cached)
        say(f"(c) {deployment}: uncached {uncached_s:.2f} s, cached {cached_s:.2f} s -> cached takes "
            f"{cached_s / uncached_s:.2f} of the time (median of {REPEATS}; a cached run made {again} requests)")


def part_c(say: t.Callable[[str], None]) -> None:
    with tempfile.TemporaryDirectory(prefix="pn-bench-inv-") as work:
        for deployment in ("onprem", "cloud"):
            _one_deployment(deployment, Path(work), say)
