# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# What the runner keeps in its state directory: the run lock (a run that finds it held is skipped, not queued),
# the count of skipped runs, the schedule state (when the last MQTT CONNECT and the last hold ran, what each path
# last showed) and the history, the last N results as JSON lines. Every rewrite is atomic (_host._files).
from __future__ import annotations

import fcntl
import json
import os
import typing as t

from .._host._files import FileMeta, read_text, write_file

LOCK = "run.lock"
SKIPS = "skipped.count"
STATE = "state.json"
HISTORY = "history.jsonl"
OWN_FILE = FileMeta(0o640)


class Lock:
    """An exclusive, non-blocking flock on <state_dir>/run.lock; the kernel drops it when the run dies."""

    def __init__(self, state_dir: str) -> None:
        self.path = os.path.join(state_dir, LOCK)
        self.fd: t.Optional[int] = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)  # novm: flags, not a union type
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # novm: flags, not a union type
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def count_skip(state_dir: str) -> int:
    """Add one to the skipped runs (under its own lock: the run holding the run lock may read it any time)."""
    path = os.path.join(state_dir, SKIPS)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)  # novm: flags, not a union type
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with os.fdopen(os.dup(fd), "r+", encoding="ascii") as handle:
            count = _number(handle.read()) + 1
            handle.seek(0)
            handle.truncate()
            handle.write(f"{count}\n")
        return count
    finally:
        os.close(fd)


def skipped(state_dir: str) -> int:
    return _number(read_text(os.path.join(state_dir, SKIPS)) or "")


def _number(text: str) -> int:
    try:
        return max(0, int(text.strip() or 0))
    except ValueError:
        return 0


def load_state(state_dir: str) -> t.Dict[str, t.Any]:
    """The schedule state; a missing or unreadable one starts afresh (the next run then does the fullest check)."""
    try:
        data = json.loads(read_text(os.path.join(state_dir, STATE)) or "{}")
    except ValueError:
        data = {}
    return data if isinstance(data, dict) else {}


def save_state(state_dir: str, state: t.Mapping[str, t.Any]) -> None:
    write_file(os.path.join(state_dir, STATE), json.dumps(dict(state), indent=1, sort_keys=True) + "\n", OWN_FILE)


def append_history(state_dir: str, entry: t.Mapping[str, t.Any], keep: int) -> int:
    """Add one JSON line and keep only the newest `keep` lines; returns how many lines the history holds."""
    path = os.path.join(state_dir, HISTORY)
    line = json.dumps(dict(entry), sort_keys=True, separators=(",", ":"))
    lines = (read_text(path) or "").splitlines()
    lines = [kept for kept in lines if kept.strip()] + [line]
    lines = lines[-max(1, keep):]
    write_file(path, "\n".join(lines) + "\n", OWN_FILE)
    return len(lines)


def read_history(state_dir: str) -> t.List[t.Dict[str, t.Any]]:
    """The history's entries, oldest first; a damaged line is left out, not fatal."""
    entries = []
    for line in (read_text(os.path.join(state_dir, HISTORY)) or "").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries
