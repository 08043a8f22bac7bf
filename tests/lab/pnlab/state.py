"""What a running lab remembers between CLI calls: one JSON file in the state dir, under a lock."""
from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


def path(state: Path) -> Path:
    return state / "lab.json"


def load(state: Path) -> dict[str, Any]:
    try:
        return json.loads(path(state).read_text())
    except FileNotFoundError:
        return {}


def save(state: Path, data: dict[str, Any]) -> None:
    tmp = path(state).with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path(state))


@contextmanager
def locked(state: Path) -> Iterator[None]:
    """Fault changes rewrite shared files; two CLI calls at once must not interleave."""
    with open(state / "lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
