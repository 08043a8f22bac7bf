# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The backend interface every firewall backend implements (see README.md in this directory), and the small
# value types it trades in: Step, Plan, Detection, BackendOptions (commands, the runner and files come from
# ../_host). Standard library only; managed hosts run Python 3.8+. Nothing here imports Ansible, so the refresh job
# can run the same code.
from __future__ import annotations

import abc
import typing as t
from dataclasses import dataclass, field

from .._host._files import FileChange, FileMeta, read_text
from .._host._run import Command, Runner
from ._model import ApplyError, Diff, FirewallError, Policy, State, diff


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
