# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# What the runner last saw on this host, read back from its state directory: enough for the fleet report's
# "last seen working" without probing again. Reads only; a missing or unreadable directory is said, not raised.
from __future__ import annotations

import os
import stat
import typing as t

from . import _store


def _newest(values: t.Iterable[t.Any]) -> t.Optional[float]:
    numbers = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return max(numbers) if numbers else None


def _paths(state: t.Mapping[str, t.Any]) -> t.List[t.Dict[str, t.Any]]:
    paths = []
    for fact in (state.get("paths") or {}).values():
        if not isinstance(fact, t.Mapping):
            continue
        found = fact.get("labels")
        labels: t.Mapping[str, t.Any] = found if isinstance(found, t.Mapping) else {}
        paths.append({"port": labels.get("port"), "via": labels.get("via"), "proxy": labels.get("proxy") or None,
                      "last_success": fact.get("last_success"), "hold_survived": fact.get("hold_survived"),
                      "idle_cut": bool(fact.get("idle_cut"))})
    return sorted(paths, key=lambda p: (str(p["via"]), str(p["proxy"]), str(p["port"])))


def _unseen(state_dir: str, reason: t.Optional[str]) -> t.Dict[str, t.Any]:
    return {"installed": False, "readable": reason is None, "reason": reason, "state_dir": state_dir,
            "last_run": None, "last_mode": None, "last_verdict": None, "last_working": None, "paths": [],
            "runs_skipped_total": 0, "history_lines": 0}


def last_seen(state_dir: str) -> t.Dict[str, t.Any]:
    """The monitor's latest facts on this host: last run, its mode and verdict, the last time any path worked."""
    try:
        if not stat.S_ISDIR(os.stat(state_dir).st_mode):
            return _unseen(state_dir, f"{state_dir} is not a directory")
        names = os.listdir(state_dir)
        state = _store.load_state(state_dir)
        history = _store.read_history(state_dir)
        skipped = _store.skipped(state_dir)
    except FileNotFoundError:
        return _unseen(state_dir, None)
    except OSError as exc:
        return _unseen(state_dir, f"cannot read {state_dir}: {exc.strerror}; run as root (become: true) or as "
                                  "the monitor's user")
    if _store.STATE not in names and _store.HISTORY not in names:
        return _unseen(state_dir, None)
    last = history[-1] if history else {}
    paths = _paths(state)
    return {"installed": True, "readable": True, "reason": None, "state_dir": state_dir,
            "last_run": last.get("time"), "last_mode": last.get("mode"), "last_verdict": last.get("verdict"),
            "last_working": _newest(p["last_success"] for p in paths), "paths": paths,
            "runs_skipped_total": skipped, "history_lines": len(history)}
