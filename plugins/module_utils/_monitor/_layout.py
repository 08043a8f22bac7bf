# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The install as a plan (files, directories, commands) and its execution, for epns_monitor_runner: a plan is the
# same in check mode and in a real run. Files are written atomically by _host._files (a file found keeps its mode
# and owner); directories the install created are listed in the manifest, so state=absent removes only those.
from __future__ import annotations

import json
import os
import typing as t
from dataclasses import dataclass, field

from .._host._files import FileMeta, write_file
from .._host._run import Command, Runner
from . import _install as I

SYSTEMCTL = "/bin/systemctl"


@dataclass
class Plan:
    files: t.List[I.Planned] = field(default_factory=list)
    mkdirs: t.List[t.Tuple[str, int, int, int]] = field(default_factory=list)  # path, uid, gid, mode
    chowns: t.List[t.Tuple[str, int, int]] = field(default_factory=list)
    rmdirs: t.List[str] = field(default_factory=list)
    before: t.List[Command] = field(default_factory=list)
    after: t.List[Command] = field(default_factory=list)
    scheduler: t.Optional[str] = None

    @property
    def changed(self) -> bool:
        return bool(self.files or self.mkdirs or self.chowns or self.rmdirs or self.before or self.after)


def _library_files(settings: I.Settings) -> t.List[str]:
    found = []
    for directory, _dirs, names in os.walk(settings.library):
        found += [os.path.join(directory, name) for name in names if name.endswith(".py")]
    return sorted(found)


def _missing_parents(path: str) -> t.List[str]:
    missing = []
    while path and path != "/" and not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    return missing


def plan_present(settings: I.Settings, minutes: int, sources: t.Optional[t.Mapping[str, str]] = None) -> Plan:
    uid, gid = I.runner_ids(settings.user)
    plan = Plan(scheduler=I.choose_scheduler(settings.scheduler))
    manifest = I.read_manifest(settings.config_dir)
    created = set(manifest.get("dirs") or [])
    _plan_directories(settings, plan, uid, gid, created)
    code = dict(sources if sources is not None else I.package_sources())
    for init in ("__init__.py", *(f"{package}/__init__.py" for package in I.COPIED
                                  if any(name.startswith(package + "/") for name in code))):
        code.setdefault(init, "")
    library = {f"{settings.library}/{I.LIB_PACKAGE}/{name}": source for name, source in code.items()}
    wanted = [I.planned(path, source) for path, source in sorted(library.items())]
    wanted += [I.planned(path, None) for path in _library_files(settings) if path not in library]
    for path in library:
        created.update(_missing_parents(os.path.dirname(path)))
    created.update(_missing_parents(settings.config_dir))
    created.update(_missing_parents(os.path.dirname(settings.entry)))
    wanted.append(I.planned(settings.config_file, json.dumps(settings.config, indent=2, sort_keys=True) + "\n",
                            FileMeta(0o640, 0, gid)))
    wanted.append(I.planned(settings.entry, I.entry_script(settings), FileMeta(0o755)))
    units = {f"{I.UNIT_DIR}/{I.UNIT}.service": I.service_unit(settings),
             f"{I.UNIT_DIR}/{I.UNIT}.timer": I.timer_unit(settings, minutes)}
    systemd = plan.scheduler == "systemd"
    wanted += [I.planned(path, text if systemd else None) for path, text in units.items()]
    wanted.append(I.planned(I.CRON_FILE, None if systemd else I.cron_entry(settings, minutes)))
    installed = sorted(p.path for p in wanted if p.content is not None)
    record = {"files": installed, "dirs": sorted(created), "state_dir": settings.state_dir,
              "textfile_dir": settings.textfile_dir, "scheduler": plan.scheduler}
    wanted.append(I.planned(os.path.join(settings.config_dir, I.MANIFEST),
                            json.dumps(record, indent=2, sort_keys=True) + "\n", FileMeta(0o600)))
    plan.files = [p for p in wanted if p.changed]
    if systemd and any(p.path.startswith(I.UNIT_DIR) for p in plan.files):
        plan.after += [Command((SYSTEMCTL, "daemon-reload")), Command((SYSTEMCTL, "enable", "--now",
                                                                       f"{I.UNIT}.timer"))]
    return plan


def _plan_directories(settings: I.Settings, plan: Plan, uid: int, gid: int, created: t.Set[str]) -> None:
    """The state directory belongs to the runner user; the textfile directory must let it create files."""
    if not os.path.isdir(settings.state_dir):
        plan.mkdirs.append((settings.state_dir, uid, gid, 0o750))
        created.update(_missing_parents(settings.state_dir))
    elif (os.stat(settings.state_dir).st_uid, os.stat(settings.state_dir).st_gid) != (uid, gid):
        plan.chowns.append((settings.state_dir, uid, gid))
    if not os.path.isdir(settings.textfile_dir):
        created.update(_missing_parents(settings.textfile_dir))
        plan.mkdirs.append((settings.textfile_dir, uid, gid, 0o755))
    elif not I.can_write(settings.textfile_dir, uid, gid, settings.user):
        raise I.InstallError(
            f"textfile_dir: {settings.textfile_dir} exists and user {settings.user!r} cannot create files in it "
            "(the metrics are written as a new file and renamed); give the directory's group write access and "
            f"add {settings.user!r} to that group, or point textfile_dir (and node_exporter's "
            "--collector.textfile.directory) at a directory it can write")


def plan_absent(settings: I.Settings) -> Plan:
    """Remove what the install made and what the runner wrote, by the manifest and by the known names."""
    manifest = I.read_manifest(settings.config_dir)
    state_dir = str(manifest.get("state_dir") or settings.state_dir)
    textfile_dir = str(manifest.get("textfile_dir") or settings.textfile_dir)
    known = {settings.entry, settings.config_file, I.CRON_FILE, os.path.join(settings.config_dir, I.MANIFEST),
             f"{I.UNIT_DIR}/{I.UNIT}.service", f"{I.UNIT_DIR}/{I.UNIT}.timer",
             os.path.join(textfile_dir, I.METRICS_FILE)}
    known.update(str(p) for p in manifest.get("files") or [])
    known.update(_library_files(settings))
    known.update(os.path.join(state_dir, name) for name in I.RUNNER_FILES)
    if os.path.isdir(state_dir):
        known.update(os.path.join(state_dir, n) for n in os.listdir(state_dir) if n.startswith(".pn-"))
    plan = Plan(files=[p for p in (I.planned(path, None) for path in sorted(known)) if p.changed])
    dirs = set(manifest.get("dirs") or [])
    for directory, _subdirs, _names in os.walk(settings.library):
        dirs.add(directory)
    plan.rmdirs = sorted((d for d in dirs if os.path.isdir(d)), key=lambda d: (-d.count("/"), d))
    if any(p.path.startswith(I.UNIT_DIR) for p in plan.files) and os.path.isdir(I.SYSTEMD_RUNTIME):
        plan.before.append(Command((SYSTEMCTL, "disable", "--now", f"{I.UNIT}.timer")))
        plan.after.append(Command((SYSTEMCTL, "daemon-reload")))
    return plan


def apply(plan: Plan, runner: Runner) -> None:
    for command in plan.before:
        runner.check(command.argv, command.stdin, what="stopping the runner's timer")
    for path, uid, gid, mode in plan.mkdirs:
        os.makedirs(path, exist_ok=True)
        os.chmod(path, mode)
        os.chown(path, uid, gid)
    for path, uid, gid in plan.chowns:
        os.chown(path, uid, gid)
    for change in plan.files:
        write_file(change.path, change.content, change.create_as)
    for directory in plan.rmdirs:
        try:
            os.rmdir(directory)
        except OSError:
            pass  # not empty: something that is not ours lives there
    for command in plan.after:
        runner.check(command.argv, command.stdin, what="starting the runner's timer")


def installed_state(settings: I.Settings) -> t.Dict[str, t.Any]:
    """The module's before/after: whether the runner is installed, how it is scheduled, the files it owns."""
    manifest = I.read_manifest(settings.config_dir)
    files = sorted(p for p in manifest.get("files") or [] if os.path.exists(p))
    return {"installed": bool(files), "scheduler": manifest.get("scheduler") if files else None,
            "files": files, "dirs": sorted(d for d in manifest.get("dirs") or [] if os.path.isdir(d))}


def expected_state(plan: Plan, before: t.Mapping[str, t.Any], present: bool) -> t.Dict[str, t.Any]:
    """What installed_state will say once the plan ran (the after of check mode)."""
    if not present:
        return {"installed": False, "scheduler": None, "files": [], "dirs": []}
    manifest = next((p for p in plan.files if p.path.endswith("/" + I.MANIFEST) and p.content), None)
    if manifest is None:
        return dict(before)
    record = json.loads(t.cast(str, manifest.content))
    return {"installed": True, "scheduler": record["scheduler"], "files": record["files"], "dirs": record["dirs"]}


def file_entries(plan: Plan) -> t.List[t.Dict[str, str]]:
    return [{"path": p.path, "action": "removed" if p.content is None else "created" if p.before is None
             else "updated"} for p in plan.files]


def file_diffs(plan: Plan) -> t.List[t.Dict[str, str]]:
    """One diff per file; the copied code is summarised (its text is the collection's own source)."""
    diffs = []
    for change in plan.files:
        before, after = change.before or "", change.content or ""
        if "/lib/" in change.path and change.path.endswith(".py"):
            before = f"(runner code, {len(before)} bytes)\n" if change.before is not None else ""
            after = f"(runner code, {len(after)} bytes)\n" if change.content is not None else ""
        diffs.append({"before_header": change.path, "after_header": change.path, "before": before, "after": after})
    for path, uid, gid, mode in plan.mkdirs:
        diffs.append({"before_header": path, "after_header": path, "before": "",
                      "after": f"(directory, mode {mode:04o}, owner {uid}:{gid})\n"})
    return diffs
