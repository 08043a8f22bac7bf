# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# What epns_monitor_runner installs: a copy of the runner and the code it runs (this package, _probe, _host and the
# two shared modules they import, taken from the loaded modules, also out of AnsiballZ's zip) under
# <prefix>/lib/protectnet_epns/, the command <prefix>/bin/epns-probe, the configuration <config_dir>/monitor.json,
# the state directory, and a hardened systemd service + timer (hosts running systemd) or a cron.d entry. A manifest
# in <config_dir> lists what the install made, so state=absent removes exactly that and what the runner wrote.
from __future__ import annotations

import grp
import json
import os
import pwd
import stat
import sys
import typing as t
from dataclasses import dataclass, field

from .._host._files import FileMeta, read_text
from .._host._jobs import cron_schedule, loaded_sources

LIB_PACKAGE = "protectnet_epns"
COPIED = ("_monitor", "_probe", "_host", "_agent")
SINGLE = ("_epns", "_hostname")
REQUIRED = ("_monitor/_runner.py", "_probe/_engine.py", "_agent/_observe.py", "_host/_files.py", "_epns.py",
            "_hostname.py")
NOT_COPIED = ("_monitor/_install.py",)  # the module's side only
UNIT = "protectnet-epns-monitor"
UNIT_DIR = "/etc/systemd/system"
CRON_FILE = "/etc/cron.d/protectnet_epns_monitor"
MANIFEST = "monitor-installed.json"
RUNNER_FILES = ("run.lock", "skipped.count", "state.json", "history.jsonl")
METRICS_FILE = "epns.prom"
SYSTEMD_RUNTIME = "/run/systemd/system"  # exists where systemd is PID 1 (sd_booted)


class InstallError(ValueError):
    """A setting or host fact that stops the install; the message names it and what would do."""


@dataclass
class Settings:
    user: str = "epns-monitor"
    prefix: str = "/opt/protectnet-epns"
    config_dir: str = "/etc/protectnet-epns"
    state_dir: str = "/var/lib/protectnet-epns"
    textfile_dir: str = "/var/lib/prometheus/node-exporter"
    interval_minutes: int = 15
    jitter_seconds: int = 300
    scheduler: str = "auto"
    python: str = sys.executable
    hold_seconds: int = 900
    config: t.Dict[str, t.Any] = field(default_factory=dict)

    @property
    def entry(self) -> str:
        return f"{self.prefix}/bin/epns-probe"

    @property
    def library(self) -> str:
        return f"{self.prefix}/lib"

    @property
    def config_file(self) -> str:
        return f"{self.config_dir}/monitor.json"


def check_interval(minutes: t.Any, allow_short: bool = False) -> int:
    """Minutes that a timer and cron both keep evenly: a divisor of 60, or whole hours that divide a day."""
    accepted = "a divisor of 60 (15, 20, 30) or whole hours dividing a day (60, 120, 180, 240, 360, 480, 720, 1440)"
    value = minutes if isinstance(minutes, int) and not isinstance(minutes, bool) else -1
    even = (0 < value < 60 and 60 % value == 0) or (value >= 60 and value % 60 == 0 and 24 % (value // 60) == 0)
    if not even or value > 1440:
        raise InstallError(f"interval_minutes: {minutes!r} cannot be kept evenly; accepted: {accepted}")
    if value < 15 and not allow_short:
        raise InstallError(f"interval_minutes: {value} is under 15 minutes, too often toward ESET's production "
                           "service for a fleet; set allow_short_interval to true to use it anyway (a lab)")
    return value


def choose_scheduler(wanted: str) -> str:
    running = os.path.isdir(SYSTEMD_RUNTIME)
    if wanted == "auto":
        return "systemd" if running else "cron"
    if wanted == "systemd" and not running:
        raise InstallError(f"scheduler: systemd was asked for, but this host does not run systemd (no "
                           f"{SYSTEMD_RUNTIME}); use cron or auto")
    if wanted not in ("systemd", "cron"):
        raise InstallError(f"scheduler: {wanted!r} is not one of auto, systemd, cron")
    return wanted


def package_sources() -> t.Dict[str, str]:
    """The runner's own code on the host: COPIED and SINGLE as loaded (_host._jobs), by path under module_utils."""
    sources = loaded_sources(COPIED, SINGLE, NOT_COPIED)
    missing = [required for required in REQUIRED if required not in sources]
    if missing:
        raise InstallError(f"cannot read the runner's own source ({', '.join(missing)}) to install it")
    return sources


def entry_script(settings: Settings) -> str:
    return (f"#!{settings.python}\n"
            "# Managed by protectnet.epns.epns_monitor_runner: the EPNS probe runner (epns-probe --help).\n"
            "import sys\n"
            f"sys.path.insert(0, {settings.library!r})\n"
            f"from {LIB_PACKAGE}._monitor._runner import main\n"
            "argv = sys.argv[1:]\n"
            f"sys.exit(main(argv if '--config' in argv else [\"--config\", {settings.config_file!r}] + argv))\n")


def service_unit(settings: Settings) -> str:
    # A hold runs hold_seconds plus the probe's own timeout; the start limit leaves room for both.
    limit = settings.hold_seconds + 600
    return ("# Managed by protectnet.epns.epns_monitor_runner\n[Unit]\n"
            "Description=EPNS reachability probe run (protectnet.epns)\n"
            "Wants=network-online.target\nAfter=network-online.target\n\n"
            "[Service]\nType=oneshot\n"
            f"User={settings.user}\nGroup={settings.user}\n"
            f"ExecStart={settings.entry} --once --quiet\n"
            f"TimeoutStartSec={limit}\n"
            "UMask=0022\n"
            "NoNewPrivileges=yes\nProtectSystem=strict\nProtectHome=yes\nPrivateTmp=yes\n"
            f"ReadWritePaths={settings.state_dir} {settings.textfile_dir}\n"
            "PrivateDevices=yes\nProtectKernelTunables=yes\nProtectKernelModules=yes\nProtectControlGroups=yes\n"
            "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK\nRestrictSUIDSGID=yes\n"
            "LockPersonality=yes\nCapabilityBoundingSet=\n")


def timer_unit(settings: Settings, minutes: int) -> str:
    return ("# Managed by protectnet.epns.epns_monitor_runner\n[Unit]\n"
            "Description=Run the EPNS reachability probe (protectnet.epns)\n\n"
            f"[Timer]\nOnBootSec=5min\nOnUnitActiveSec={minutes}min\n"
            f"RandomizedDelaySec={settings.jitter_seconds}\n\n"
            "[Install]\nWantedBy=timers.target\n")


def cron_entry(settings: Settings, minutes: int) -> str:
    jitter = f" --jitter {settings.jitter_seconds}" if settings.jitter_seconds else ""
    return ("# Managed by protectnet.epns.epns_monitor_runner: the EPNS probe runner.\n"
            "SHELL=/bin/sh\n"
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
            f"{cron_schedule(minutes)} {settings.user} {settings.entry} --once --quiet{jitter}\n")


def runner_ids(user: str) -> t.Tuple[int, int]:
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise InstallError(f"user: {user!r} does not exist on this host; create it first (the role epns_monitor "
                           "creates it: a system user without a login shell)") from None
    return entry.pw_uid, entry.pw_gid


def can_write(path: str, uid: int, gid: int, user: str) -> bool:
    """Whether user (uid, primary gid) may create files in directory path, by its mode bits."""
    found = os.stat(path)
    groups = {gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}
    if uid == 0 or found.st_uid == uid:
        return uid == 0 or bool(found.st_mode & stat.S_IWUSR)
    if found.st_gid in groups:
        return bool(found.st_mode & stat.S_IWGRP)
    return bool(found.st_mode & stat.S_IWOTH)


def read_manifest(config_dir: str) -> t.Dict[str, t.Any]:
    try:
        data = json.loads(read_text(os.path.join(config_dir, MANIFEST)) or "{}")
    except ValueError:
        data = {}
    return data if isinstance(data, dict) else {}


class Planned(t.NamedTuple):
    """One file the install writes (content) or removes (None), and how a file it creates is owned."""

    path: str
    content: t.Optional[str]
    before: t.Optional[str]
    create_as: FileMeta

    @property
    def changed(self) -> bool:
        return self.content != self.before


PLAIN_FILE = FileMeta(0o644)


def planned(path: str, content: t.Optional[str], create_as: FileMeta = PLAIN_FILE) -> Planned:
    return Planned(path, content, read_text(path), create_as)
