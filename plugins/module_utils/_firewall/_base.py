# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The backend interface every firewall backend implements (see README.md in this directory), and the small
# value types it trades in: Command, Step, Plan, FileChange, Detection, BackendOptions. Standard library only;
# managed hosts run Python 3.8+. Nothing here imports Ansible, so the refresh job can run the same code.
from __future__ import annotations

import abc
import os
import shutil
import stat
import subprocess
import tempfile
import typing as t
from dataclasses import dataclass, field

from ._model import ApplyError, Diff, FirewallError, Policy, State, diff

C_LOCALE = {"LC_ALL": "C", "LANG": "C", "LANGUAGE": "C"}
SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


# -- running commands ------------------------------------------------------------------------------------------
class Runner(abc.ABC):
    """Runs argv lists (never a shell) in the C locale; the module's runner wraps AnsibleModule.run_command."""

    @abc.abstractmethod
    def run(self, argv: t.Sequence[str], data: t.Optional[str] = None) -> t.Tuple[int, str, str]:
        """Run argv with data on stdin; return (rc, stdout, stderr). Never raises for a non-zero rc."""

    @abc.abstractmethod
    def which(self, name: str) -> t.Optional[str]:
        """The full path of an executable (PATH plus the sbin directories), or None."""

    def check(self, argv: t.Sequence[str], data: t.Optional[str] = None, what: str = "") -> str:
        rc, out, err = self.run(argv, data)
        if rc != 0:
            raise CommandError(argv, rc, out, err, what)
        return out


class SubprocessRunner(Runner):
    """For code that runs without Ansible: the refresh job and the tests."""

    def run(self, argv: t.Sequence[str], data: t.Optional[str] = None) -> t.Tuple[int, str, str]:
        env = dict(os.environ, **C_LOCALE)
        try:
            done = subprocess.run(list(argv), input=data, capture_output=True, text=True, env=env, check=False,
                                  stdin=None if data is not None else subprocess.DEVNULL)
        except OSError as exc:
            return 127, "", str(exc)
        return done.returncode, done.stdout, done.stderr

    def which(self, name: str) -> t.Optional[str]:
        path = os.pathsep.join([os.environ.get("PATH", ""), *SBIN_DIRS])
        return shutil.which(name, path=path)


class CommandError(FirewallError):
    def __init__(self, argv: t.Sequence[str], rc: int, out: str, err: str, what: str = "") -> None:
        text = (err or out).strip().splitlines()
        short = " | ".join(text[-5:]) if text else "no output"
        super().__init__(f"{what + ': ' if what else ''}{' '.join(argv)} failed (rc={rc}): {short}")
        self.argv, self.rc, self.out, self.err = list(argv), rc, out, err


@dataclass(frozen=True)
class Command:
    """One argv, optionally with stdin. Plain data: the rollback watchdog runs these without this package."""

    argv: t.Tuple[str, ...]
    stdin: t.Optional[str] = None

    def as_dict(self) -> t.Dict[str, t.Any]:
        return {"argv": list(self.argv), "stdin": self.stdin}


@dataclass
class Step:
    """A command that is atomic by itself, and the commands that undo it once it has succeeded."""

    do: Command
    undo: t.List[Command] = field(default_factory=list)
    what: str = ""


@dataclass
class Plan:
    """Steps run in order. If one fails, the undo commands of the steps already done run in reverse order."""

    steps: t.List[Step] = field(default_factory=list)

    @property
    def commands(self) -> t.List[Command]:
        return [s.do for s in self.steps]

    def __bool__(self) -> bool:
        return bool(self.steps)


# -- files (persistence, refresh job) ----------------------------------------------------------------------------
@dataclass(frozen=True)
class FileMeta:
    """The mode and owner of a file as found: a rewrite keeps them, putting a removed file back restores them."""

    mode: int
    uid: int
    gid: int

    @classmethod
    def of(cls, path: str) -> t.Optional[FileMeta]:
        try:
            found = os.stat(path)
        except FileNotFoundError:
            return None
        return cls(stat.S_IMODE(found.st_mode), found.st_uid, found.st_gid)


@dataclass
class FileChange:
    """The full new content of a file (None: remove it). before is the content found (None: absent), found its mode
    and owner; mode is the mode of a file this change creates."""

    path: str
    content: t.Optional[str]
    before: t.Optional[str] = None
    mode: int = 0o644
    found: t.Optional[FileMeta] = None

    @property
    def changed(self) -> bool:
        return self.content != self.before

    def as_dict(self) -> t.Dict[str, t.Any]:
        return {"path": self.path, "content": self.content, "mode": self.mode}

    def restore(self) -> t.Dict[str, t.Any]:
        """The change that puts the file back as it was found: content, mode and owner."""
        if self.found is None:
            return {"path": self.path, "content": self.before, "mode": self.mode}
        return {"path": self.path, "content": self.before, "mode": self.found.mode,
                "uid": self.found.uid, "gid": self.found.gid}


def read_text(path: str) -> t.Optional[str]:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_file(change: t.Mapping[str, t.Any]) -> None:
    """Atomically replace or remove one file (a temporary file in the same directory, then rename). A file that
    exists keeps its mode, owner and group; a new one gets change['mode'] (and change['uid'/'gid'] when given)."""
    path, content = change["path"], change["content"]
    if content is None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        _prune(os.path.dirname(path))
        return
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    meta = FileMeta.of(path) or FileMeta(int(change.get("mode", 0o644)), int(change.get("uid", -1)),
                                         int(change.get("gid", -1)))
    fd, tmp = tempfile.mkstemp(prefix=".pn-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.chmod(tmp, meta.mode)
        _chown_if_other(tmp, meta)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _chown_if_other(path: str, meta: FileMeta) -> None:
    """chown only where the owner differs (so a run without root that writes its own files still works)."""
    found = os.stat(path)
    uid = -1 if meta.uid in (-1, found.st_uid) else meta.uid
    gid = -1 if meta.gid in (-1, found.st_gid) else meta.gid
    if uid != -1 or gid != -1:
        os.chown(path, uid, gid)


OWN_DIR = "/etc/protectnet_epns"


def _prune(directory: str) -> None:
    """Remove our own directories once they are empty (state=absent leaves /etc as it was)."""
    while directory.startswith(OWN_DIR):
        try:
            os.rmdir(directory)
        except OSError:
            return
        directory = os.path.dirname(directory)


# Files as earlier owners in the same run will leave them (path -> content, None: removed). Two owners may edit one
# file in one run (wol_multicast's filter and TTL tables, each with its include block in the nftables service
# configuration); each must start from the other's result, or the last writer undoes the first.
Planned = t.Optional[t.Mapping[str, t.Optional[str]]]


def planned_text(path: str, planned: Planned = None) -> t.Optional[str]:
    """A file's content as this owner will find it: what an earlier owner of the same run writes there, else the
    disk."""
    if planned is not None and path in planned:
        return planned[path]
    return read_text(path)


def file_change(path: str, content: t.Optional[str], mode: int = 0o644, planned: Planned = None) -> FileChange:
    """mode: for a file this creates; a file found keeps its own mode and owner (a write never changes them)."""
    return FileChange(path, content, planned_text(path, planned), mode, FileMeta.of(path))


# -- backend selection data --------------------------------------------------------------------------------------
@dataclass
class Detection:
    """What detect() found. installed: the tools exist; active: it is the host's firewall in use (for auto);
    usable: it can be driven now (a daemon backend that is installed but not running is not usable);
    owns: this backend already holds objects of ours; deny: the host has a default-deny egress in it."""

    name: str
    installed: bool = False
    usable: bool = False
    active: bool = False
    owns: bool = False
    deny: bool = False
    detail: str = ""


@dataclass
class BackendOptions:
    """Options every backend receives. Backend-specific ones are read with .get() so new backends add their own."""

    persist: bool = True
    options: t.Dict[str, t.Any] = field(default_factory=dict)

    def get(self, key: str, default: t.Any = None) -> t.Any:
        value = self.options.get(key)
        return default if value is None else value


# -- the interface -----------------------------------------------------------------------------------------------
class FirewallBackend(abc.ABC):
    """One firewall technology. See README.md beside this file for the contract of each method."""

    name: t.ClassVar[str] = ""

    def __init__(self, runner: Runner, options: t.Optional[BackendOptions] = None) -> None:
        self.runner = runner
        self.options = options or BackendOptions()
        self.warnings: t.List[str] = []
        # Parts of the policy this host cannot carry, each {family, networks, reason} (the module's not_applied).
        self.not_applied: t.List[t.Dict[str, t.Any]] = []

    # detection ----------------------------------------------------------------------------------------------
    @classmethod
    @abc.abstractmethod
    def detect(cls, runner: Runner) -> Detection:
        """Read-only: is it installed, usable, the host's active firewall, does it hold our objects?"""

    def require_usable(self) -> None:
        """Raise FirewallError naming what is missing when this backend cannot be driven on this host."""
        found = self.detect(self.runner)
        if not found.installed:
            raise FirewallError(f"backend {self.name} is not installed on this host ({found.detail})")
        if not found.usable:
            raise FirewallError(f"backend {self.name} is installed but not usable: {found.detail}")

    def _tool(self, command: str, missing: str) -> str:
        """The path of one of the backend's commands; FirewallError (missing says what is not installed) without it."""
        path = self.runner.which(command)
        if not path:
            raise FirewallError(f"backend {self.name}: {missing}")
        return path

    # the state machine --------------------------------------------------------------------------------------
    @abc.abstractmethod
    def read_current(self) -> State:
        """Read-only: the objects this backend owns now (identified by the TAG), plus in meta whatever plan()
        and compute_desired() need (handles, foreign chains). Must not change the ruleset in any way."""

    @abc.abstractmethod
    def compute_desired(self, policy: Policy, current: State) -> State:
        """Pure: the State that implements policy on this host (current gives the context, e.g. foreign chains)."""

    def diff(self, current: State, desired: State) -> Diff:
        return diff(current, desired)

    @abc.abstractmethod
    def plan(self, current: State, desired: State) -> Plan:
        """Pure: the commands that turn current into desired, touching only owned objects. A change of set
        contents alone must be a set update (never a rebuild). plan(s, s) is empty."""

    def apply(self, plan: Plan) -> None:
        """Run the plan; on failure undo the steps already done and raise ApplyError. Each step must be atomic."""
        done: t.List[Step] = []
        for step in plan.steps:
            rc, out, err = self.runner.run(step.do.argv, step.do.stdin)
            if rc == 0:
                done.append(step)
                continue
            problem = " | ".join((err or out).strip().splitlines()[-5:]) or f"rc={rc}"
            undo_failures = []
            for finished in reversed(done):
                for command in finished.undo:
                    urc, uout, uerr = self.runner.run(command.argv, command.stdin)
                    if urc != 0:
                        undo_failures.append(f"{' '.join(command.argv)}: {(uerr or uout).strip()}")
            what = step.what or " ".join(step.do.argv)
            if undo_failures:
                raise ApplyError(f"{what} failed ({problem}); undoing the steps before it failed too: "
                                 + "; ".join(undo_failures), rolled_back=False, detail=step.do.stdin or "")
            raise ApplyError(f"{what} failed ({problem}); the previous state was kept"
                             + (" (the steps before it were undone)" if done else ""),
                             rolled_back=True, detail=step.do.stdin or "")

    def refresh_desired(self, policy: Policy, current: State) -> State:
        """current with only the contents of its existing sets replaced by policy's addresses (the refresh job).
        Never adds or removes containers, sets or rules."""
        wanted = self.compute_desired(policy, current)
        sets = {key: wanted.sets.get(key, elements) for key, elements in current.sets.items()}
        return State(dict(current.containers), sets, dict(current.rules), dict(current.meta))

    @abc.abstractmethod
    def persist(self, desired: State, planned: Planned = None) -> t.List[FileChange]:
        """The file changes that make desired survive a reboot in the distribution's usual way (desired empty:
        remove what an earlier run persisted). Only changed files are returned; nothing is written here. planned:
        files an earlier owner of the same run writes; a file found there is edited from that content."""
