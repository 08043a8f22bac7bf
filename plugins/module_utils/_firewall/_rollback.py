# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# Rollback unless confirmed (the idea of community.general's iptables_state, for every backend).
#
#   arm():     after a change is applied, write the commands that restore the previous state (computed by the
#              backend right after the apply) and the file changes still pending (persistence, refresh job) to
#              /run/protectnet_epns/rollback/<token>/, create the file `armed`, and start a detached watchdog
#              (its own session, no open descriptors of the module) that waits until the deadline.
#   confirm(): the confirmation module, run by the action plugin over a fresh connection, renames `armed` to
#              `confirmed` and then writes the pending files.
#   watchdog:  at the deadline it renames `armed` to `reverting`, runs the restore commands and writes
#              `result.json`. Renaming is atomic, so exactly one of confirm and revert wins.
#
# Nothing is persisted before the confirmation, and /run does not survive a reboot: a reboot before the
# confirmation also comes back with the previous rules. The watchdog is plain standard-library Python.
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import typing as t

from .._host._files import FileChange
from .._host._run import Command
from ._model import FirewallError

ROLLBACK_DIR = "/run/protectnet_epns/rollback"
MIN_SECONDS = 3
MAX_SECONDS = 3600


class KeptButIncomplete(FirewallError):
    """The change is confirmed (kept), but a command that completes it (the refresh timer's) failed."""


WATCHDOG = r"""
import json, os, subprocess, sys, time
d = sys.argv[1]
with open(os.path.join(d, "plan.json")) as f:
    spec = json.load(f)
while time.time() < spec["deadline"]:
    if not os.path.exists(os.path.join(d, "armed")):
        sys.exit(0)
    time.sleep(0.1)
try:
    os.rename(os.path.join(d, "armed"), os.path.join(d, "reverting"))
except OSError:
    sys.exit(0)
env = dict(os.environ, LC_ALL="C", LANG="C")
results = []
for cmd in spec["commands"]:
    try:
        p = subprocess.run(cmd["argv"], input=cmd.get("stdin"), capture_output=True, text=True, env=env,
                           stdin=None if cmd.get("stdin") is not None else subprocess.DEVNULL, timeout=60)
        results.append({"argv": cmd["argv"], "rc": p.returncode, "stderr": p.stderr[-2000:]})
    except Exception as exc:
        results.append({"argv": cmd["argv"], "rc": -1, "stderr": str(exc)})
tmp = os.path.join(d, ".result.json")
with open(tmp, "w") as f:
    json.dump({"reverted_at": time.time(), "ok": all(r["rc"] == 0 for r in results), "results": results}, f)
os.replace(tmp, os.path.join(d, "result.json"))
os.rename(os.path.join(d, "reverting"), os.path.join(d, "reverted"))
"""


def check_seconds(seconds: t.Any) -> int:
    try:
        value = int(seconds)
    except (TypeError, ValueError):
        value = -1
    if not MIN_SECONDS <= value <= MAX_SECONDS:
        raise FirewallError(f"rollback_seconds: {seconds!r} is out of range (expected {MIN_SECONDS} to "
                            f"{MAX_SECONDS} seconds, or 0 for no rollback)")
    return value


def pending(base: str = ROLLBACK_DIR) -> t.List[str]:
    """Tokens of changes still waiting for their confirmation."""
    try:
        names = os.listdir(base)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if os.path.exists(os.path.join(base, n, "armed")))


def arm(commands: t.Sequence[Command], files: t.Sequence[t.Mapping[str, t.Any]], seconds: int,
        before: t.Sequence[t.Mapping[str, t.Any]] = (), after: t.Sequence[t.Mapping[str, t.Any]] = (),
        base: str = ROLLBACK_DIR, python: str = sys.executable) -> t.Dict[str, t.Any]:
    """Start the watchdog. files (and the commands before/after them) are written only when confirmed."""
    token = time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(4)
    directory = os.path.join(base, token)
    os.makedirs(directory, mode=0o700)
    deadline = time.time() + seconds
    spec = {"token": token, "deadline": deadline, "commands": [c.as_dict() for c in commands],
            "files": list(files), "before": list(before), "after": list(after)}
    with open(os.path.join(directory, "plan.json"), "w", encoding="utf-8") as handle:
        json.dump(spec, handle)
    with open(os.path.join(directory, "armed"), "w", encoding="utf-8") as handle:
        handle.write(str(os.getpid()))
    # Not a Runner: the watchdog must outlive this module, detached in its own session; run_command waits for it.
    process = subprocess.Popen(
        [python, "-c", WATCHDOG, directory], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, close_fds=True, start_new_session=True, cwd="/")
    return {"token": token, "deadline": deadline, "seconds": seconds, "watchdog_pid": process.pid,
            "directory": directory}


def confirm(token: str, base: str = ROLLBACK_DIR) -> t.Dict[str, t.Any]:
    """Keep the change: stop the revert and write the pending files. Raises FirewallError when too late."""
    if not token or "/" in token or token.startswith("."):
        raise FirewallError(f"token {token!r} is not a rollback token")
    directory = os.path.join(base, token)
    if not os.path.isdir(directory):
        raise FirewallError(f"no pending change {token!r} on this host (was it rebooted?)")
    try:
        os.rename(os.path.join(directory, "armed"), os.path.join(directory, "confirmed"))
    except FileNotFoundError:
        state = status(token, base)
        raise FirewallError(f"too late to confirm {token}: the host already {state['state']} the change "
                            "(the previous firewall state is back)") from None
    with open(os.path.join(directory, "plan.json"), encoding="utf-8") as handle:
        spec = json.load(handle)
    for command in spec.get("before", []):
        _run_checked(command)
    files = [_written(change) for change in spec.get("files", [])]
    for command in spec.get("after", []):
        _run_checked(command)
    return {"token": token, "state": "confirmed", "files": [f for f in files if f is not None],
            "commands": [*spec.get("before", []), *spec.get("after", [])]}


def _written(change: t.Mapping[str, t.Any]) -> t.Optional[t.Dict[str, str]]:
    """Write one pending file; its `files` entry of the module result (module_utils/_result.py, which checks the
    action; not imported, since this package runs on its own as the refresh job), None for the removal of a file
    that was not there."""
    existed = os.path.exists(change["path"])
    FileChange.from_dict(change).write()
    if change.get("content") is None:
        return {"path": change["path"], "action": "removed"} if existed else None
    return {"path": change["path"], "action": "updated" if existed else "created"}


def _run_checked(command: t.Mapping[str, t.Any]) -> None:
    argv = list(command["argv"])
    env = dict(os.environ, LC_ALL="C", LANG="C")
    try:
        done = subprocess.run(argv, input=command.get("stdin"), capture_output=True, text=True, env=env,
                              stdin=None if command.get("stdin") is not None else subprocess.DEVNULL,
                              check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KeptButIncomplete(f"the change was kept, but {' '.join(argv)} could not run: {exc}") from exc
    if done.returncode != 0:
        output = (done.stderr or done.stdout).strip()[-500:]
        raise KeptButIncomplete(f"the change was kept, but {' '.join(argv)} failed (exit status {done.returncode}"
                                + (f": {output}" if output else "") + ")")


def status(token: str, base: str = ROLLBACK_DIR) -> t.Dict[str, t.Any]:
    directory = os.path.join(base, token)
    for state in ("armed", "confirmed", "reverting", "reverted"):
        if os.path.exists(os.path.join(directory, state)):
            result: t.Dict[str, t.Any] = {"token": token, "state": state}
            try:
                with open(os.path.join(directory, "result.json"), encoding="utf-8") as handle:
                    result["result"] = json.load(handle)
            except (OSError, ValueError):
                pass
            return result
    return {"token": token, "state": "unknown"}
