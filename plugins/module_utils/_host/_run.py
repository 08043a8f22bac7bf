# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The one command runner interface: argv lists (never a shell), the C locale so output parses the same on every
# host. ModuleRunner runs through AnsibleModule.run_command (inside a module); SubprocessRunner is for the code that
# runs without Ansible (the firewall's refresh job). Tests give their own Runner.
from __future__ import annotations

import abc
import os
import shutil
import subprocess
import typing as t
from dataclasses import dataclass

if t.TYPE_CHECKING:
    from ansible.module_utils.basic import AnsibleModule

C_LOCALE = {"LC_ALL": "C", "LANG": "C", "LANGUAGE": "C"}
SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


class CommandError(Exception):
    """A command that had to succeed did not (Runner.check)."""

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


class Runner(abc.ABC):
    """Runs argv lists (never a shell) in the C locale."""

    @abc.abstractmethod
    def run(self, argv: t.Sequence[str], data: t.Optional[str] = None,
            cwd: t.Optional[str] = None) -> t.Tuple[int, str, str]:
        """Run argv with data on stdin (in cwd); return (rc, stdout, stderr). Never raises for a non-zero rc."""

    @abc.abstractmethod
    def which(self, name: str) -> t.Optional[str]:
        """The full path of an executable (PATH plus the sbin directories), or None."""

    def check(self, argv: t.Sequence[str], data: t.Optional[str] = None, what: str = "") -> str:
        """stdout of a command that must succeed; CommandError names it (and what it was for) when it does not."""
        rc, out, err = self.run(argv, data)
        if rc != 0:
            raise CommandError(argv, rc, out, err, what)
        return out


class ModuleRunner(Runner):
    """AnsibleModule.run_command: the module's logging, no_log and environment rules apply to every command."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module

    def run(self, argv: t.Sequence[str], data: t.Optional[str] = None,
            cwd: t.Optional[str] = None) -> t.Tuple[int, str, str]:
        try:
            rc, out, err = self.module.run_command(list(argv), data=data, binary_data=True, cwd=cwd,
                                                   environ_update=dict(C_LOCALE), check_rc=False,
                                                   handle_exceptions=False)
        except OSError as exc:  # as SubprocessRunner: the caller's undo still runs (fail_json here would skip it)
            return 127, "", str(exc)
        return rc, out, err

    def which(self, name: str) -> t.Optional[str]:
        return self.module.get_bin_path(name, opt_dirs=list(SBIN_DIRS))


class SubprocessRunner(Runner):
    """For code that runs without Ansible: the refresh job (and tests that run real commands)."""

    def run(self, argv: t.Sequence[str], data: t.Optional[str] = None,
            cwd: t.Optional[str] = None) -> t.Tuple[int, str, str]:
        env = dict(os.environ, **C_LOCALE)
        try:
            done = subprocess.run(list(argv), input=data, capture_output=True, text=True, env=env, check=False,
                                  cwd=cwd, stdin=None if data is not None else subprocess.DEVNULL)
        except OSError as exc:
            return 127, "", str(exc)
        return done.returncode, done.stdout, done.stderr

    def which(self, name: str) -> t.Optional[str]:
        path = os.pathsep.join([os.environ.get("PATH", ""), *SBIN_DIRS])
        return shutil.which(name, path=path)
