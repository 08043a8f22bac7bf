# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The refresh job: re-resolve the EPNS name (and the proxy) with the host's resolver and update the contents
# of the address sets the firewall module created - nothing else. It runs the same backend code as the module:
# the module copies this package and the host I/O layer it imports (_host) to /etc/protectnet_epns/lib/protectnet_epns/
# (relative imports only, so the copy works under any name) and installs a systemd timer where the host runs
# systemd, a cron.d entry otherwise. Everything lives under /etc/protectnet_epns/ and is removed with state=absent.
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import socket
import sys
import typing as t

from .._host._files import FileChange
from .._host._jobs import cron_schedule, loaded_sources
from .._host._run import Command, CommandError, Runner, SubprocessRunner
from . import _backends, _rollback
from ._base import BackendOptions, file_change
from ._model import FirewallError, PolicySpec, Resolver, State, build_policy, split_host_port

BASE_DIR = "/etc/protectnet_epns"
CONFIG = BASE_DIR + "/firewall.json"
LIB_DIR = BASE_DIR + "/lib"
LIB_PACKAGE = "protectnet_epns"
# The packages of module_utils that the copy holds: this one and the host I/O layer it imports.
COPIED = ("_firewall", "_host")
REQUIRED = ("_firewall/_refresh.py", "_firewall/_model.py", "_host/_run.py", "_host/_files.py")
ENTRY = BASE_DIR + "/refresh.py"
CRON_FILE = "/etc/cron.d/protectnet_epns_refresh"
UNIT_DIR = "/etc/systemd/system"
UNIT = "protectnet-epns-refresh"


def uses_systemd() -> bool:
    return os.path.isdir("/run/systemd/system")


def check_interval(minutes: t.Any) -> int:
    try:
        value = int(minutes)
    except (TypeError, ValueError):
        value = -1
    if not (1 <= value <= 59 or (value % 60 == 0 and 60 <= value <= 1440)):
        raise FirewallError(f"refresh_interval: {minutes!r} minutes cannot be scheduled (expected 1 to 59, or a "
                            "whole number of hours up to 1440)")
    return value


def package_sources() -> t.Dict[str, str]:
    """The refresh job's own code on the host: the COPIED packages as loaded (_host._jobs), by path relative to
    module_utils: `_firewall/_refresh.py`, `_host/_run.py`, `_host/__init__.py`."""
    sources = loaded_sources(COPIED)
    if any(required not in sources for required in REQUIRED):
        raise FirewallError("cannot read the firewall package's own source to install the refresh job")
    return sources


def job_files(
    enabled: bool, config: t.Mapping[str, t.Any], python: str, minutes: int,
    sources: t.Optional[t.Mapping[str, str]] = None,
) -> t.Tuple[t.List[FileChange], t.List[Command], t.List[Command]]:
    """(file changes, commands to run before them, commands to run after them) to install or remove the job."""
    systemd = uses_systemd()
    before: t.List[Command] = []
    after: t.List[Command] = []
    files: t.List[FileChange] = []
    if enabled:
        code = dict(sources if sources is not None else package_sources())
        for init in ("__init__.py", *(f"{package}/__init__.py" for package in COPIED)):
            code.setdefault(init, "")
        library = {f"{LIB_DIR}/{LIB_PACKAGE}/{filename}": source for filename, source in code.items()}
        for path, source in sorted(library.items()):
            files.append(file_change(path, source))
        # What an earlier version installed there and this one does not (the flat protectnet_epns_firewall/).
        files += [file_change(path, None) for path in _library_files() if path not in library]
        files.append(file_change(CONFIG, json.dumps(dict(config), indent=2, sort_keys=True) + "\n", 0o600))
        files.append(file_change(ENTRY, entry_script(python), 0o755))
        if systemd:
            files.append(file_change(f"{UNIT_DIR}/{UNIT}.service", service_unit(python)))
            files.append(file_change(f"{UNIT_DIR}/{UNIT}.timer", timer_unit(minutes)))
            files.append(file_change(CRON_FILE, None))
        else:
            files.append(file_change(CRON_FILE, cron_entry(python, minutes)))
    else:
        installed = [p for p in _installed_files() if os.path.exists(p)]
        files += [file_change(p, None) for p in installed]
    files = [f for f in files if f.changed]
    systemctl = "/bin/systemctl"
    if systemd and any(f.path.startswith(UNIT_DIR) for f in files):
        if enabled:
            after += [Command((systemctl, "daemon-reload")), Command((systemctl, "enable", "--now", f"{UNIT}.timer"))]
        else:
            before += [Command((systemctl, "disable", "--now", f"{UNIT}.timer"))]
            after += [Command((systemctl, "daemon-reload"))]
    return files, before, after


def _installed_files() -> t.List[str]:
    return [CRON_FILE, f"{UNIT_DIR}/{UNIT}.service", f"{UNIT_DIR}/{UNIT}.timer", ENTRY, CONFIG, *_library_files()]


def _library_files() -> t.List[str]:
    """Every .py file under LIB_DIR: the copy of the code, in this layout or an earlier one."""
    found = []
    for directory, _dirs, names in os.walk(LIB_DIR):
        found += [os.path.join(directory, name) for name in names if name.endswith(".py")]
    return sorted(found)


def entry_script(python: str) -> str:
    return (f"#!{python}\n"
            "# Managed by protectnet.epns.epns_firewall: re-resolve EPNS and update the firewall's address sets.\n"
            "import sys\n"
            f"sys.path.insert(0, {LIB_DIR!r})\n"
            f"from {LIB_PACKAGE}._firewall._refresh import main\n"
            f"sys.exit(main([\"--config\", {CONFIG!r}] + sys.argv[1:]))\n")


def cron_entry(python: str, minutes: int) -> str:
    return ("# Managed by protectnet.epns.epns_firewall: re-resolve EPNS and update only the firewall's address sets.\n"
            "SHELL=/bin/sh\n"
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
            f"{cron_schedule(minutes)} root {python} {ENTRY} --quiet\n")


def service_unit(python: str) -> str:
    return ("# Managed by protectnet.epns.epns_firewall\n[Unit]\n"
            "Description=Re-resolve EPNS and update the firewall's address sets (protectnet.epns)\n"
            "Wants=network-online.target\nAfter=network-online.target\n\n"
            f"[Service]\nType=oneshot\nExecStart={python} {ENTRY} --quiet\n")


def timer_unit(minutes: int) -> str:
    return ("# Managed by protectnet.epns.epns_firewall\n[Unit]\n"
            "Description=Refresh the EPNS firewall address sets (protectnet.epns)\n\n"
            f"[Timer]\nOnBootSec=2min\nOnUnitActiveSec={minutes}min\nRandomizedDelaySec=60\n\n"
            "[Install]\nWantedBy=timers.target\n")


FAMILY_NAMES = {"ipv4": "IPv4", "ipv6": "IPv6"}


def policy_names(config: t.Mapping[str, t.Any]) -> str:
    spec = PolicySpec.from_dict(config["policy"])
    names = [spec.host] if spec.via_proxy is None or spec.also_direct else []
    if spec.via_proxy is not None:
        names.append(split_host_port(spec.via_proxy)[0])
    return " and ".join(repr(n) for n in names)


def keep_families(current: State, desired: State, failed: t.Mapping[str, str]) -> State:
    """desired with the addresses of each failed family taken from current: only an answer replaces them."""
    if not failed:
        return desired
    versions = {4 if family == "ipv4" else 6 for family in failed}

    def merged(key: str, wanted: t.FrozenSet[str]) -> t.FrozenSet[str]:
        fresh = {e for e in wanted if _version(e) not in versions}
        return frozenset(fresh | {e for e in current.sets.get(key, ()) if _version(e) in versions})

    sets = {key: merged(key, wanted) for key, wanted in desired.sets.items()}
    return State(dict(desired.containers), sets, dict(desired.rules), dict(desired.meta))


def _version(element: str) -> int:
    return ipaddress.ip_network(element, strict=False).version


def refresh(config: t.Mapping[str, t.Any], runner: t.Optional[Runner] = None,
            resolver: Resolver = socket.getaddrinfo) -> t.Dict[str, t.Any]:
    """Update the set contents of an existing installation from a fresh resolution. Never adds or removes
    rules, chains or sets; with nothing installed, or a confirmation pending, it does nothing."""
    if _rollback.pending():
        return {"changed": False, "msg": "a firewall change is waiting for its confirmation; not refreshing"}
    runner = runner or SubprocessRunner()
    options = BackendOptions(persist=bool(config.get("persist", True)), options=dict(config.get("options", {})))
    backend = _backends.make_backend(str(config["backend"]), runner, options)
    current = backend.read_current()
    if current.empty:
        return {"changed": False, "msg": "no EPNS firewall objects on this host: nothing to refresh"}
    failed: t.Dict[str, str] = {}
    policy = build_policy(PolicySpec.from_dict(config["policy"]), resolver, failed)
    desired = keep_families(current, backend.refresh_desired(policy, current), failed)
    for family, why in sorted(failed.items()):
        backend.warnings.append(f"{FAMILY_NAMES[family]} addresses of {policy_names(config)} kept: {why}")
    change = backend.diff(current, desired)
    if not change.changed:
        return {"changed": False, "msg": "addresses unchanged", "warnings": backend.warnings}
    backend.apply(backend.plan(current, desired))
    if options.persist:
        for file in backend.persist(desired):
            file.write()
    return {"changed": True, "msg": "address sets updated", "sets": {
        k: {"added": v.added, "removed": v.removed} for k, v in change.sets_changed.items()},
        "warnings": backend.warnings}


def main(argv: t.Optional[t.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Refresh the EPNS firewall address sets (protectnet.epns)")
    parser.add_argument("--config", default=CONFIG)
    parser.add_argument("--quiet", action="store_true", help="print only changes, warnings and errors")
    args = parser.parse_args(argv)
    try:
        with open(args.config, encoding="utf-8") as handle:
            config = json.load(handle)
        result = refresh(config)
    except (OSError, ValueError, KeyError, FirewallError, CommandError) as exc:
        # The sets keep their previous contents: a failed resolution never empties them.
        sys.stderr.write(f"protectnet_epns refresh: {exc}\n")
        return 1
    if not args.quiet or result.get("changed") or result.get("warnings"):  # a kept family is always logged
        sys.stdout.write(f"protectnet_epns refresh: {json.dumps(result, sort_keys=True)}\n")
    return 0
