# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Controller side of epns_firewall (documentation in plugins/modules/epns_firewall.py):
#   1. validate and normalise extra_destinations (host bits rejected, overlaps merged) with the module's own
#      normalise_destinations, so a bad entry fails before the host is contacted;
#   2. run the module on the host;
#   3. with rollback_seconds, when the module armed a rollback: reset the connection and confirm over a fresh
#      one (epns_firewall_confirm). No confirmation -> the host reverts by itself; the task fails saying so.
from __future__ import annotations

import base64
import json
import time
import typing as t

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.action import ActionBase
from ansible_collections.protectnet.epns.plugins.module_utils._firewall._model import (
    FirewallError,
    normalise_destinations,
)

MODULE = "protectnet.epns.epns_firewall"
CONFIRM = "protectnet.epns.epns_firewall_confirm"
# How long after the host's deadline to keep trying to read its record of the revert.
REVERT_GRACE = 20


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp: t.Any = None, task_vars: t.Optional[t.Dict[str, t.Any]] = None) -> t.Dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        try:
            entries = args.get("extra_destinations") or []
            if isinstance(entries, str):
                entries = [e for e in entries.replace(",", " ").split() if e]
            if not isinstance(entries, list):
                raise FirewallError(f"extra_destinations must be a list of addresses or CIDRs, got {entries!r}")
            given = len(entries)
            args["extra_destinations"] = normalise_destinations(entries)
        except FirewallError as exc:
            result.update(failed=True, changed=False, msg=str(exc))
            return result

        module_result = self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)
        # The host armed its rollback before the module returned: its deadline is at most `seconds` from here.
        armed = time.monotonic()
        result.update(module_result)
        if given != len(args["extra_destinations"]):
            result["extra_destinations_merged"] = args["extra_destinations"]
        rollback = module_result.get("rollback")
        if module_result.get("failed") or not rollback:
            return result
        return self._confirm(result, rollback, armed, task_vars)

    def _confirm(self, result: t.Dict[str, t.Any], rollback: t.Dict[str, t.Any], armed: float,
                 task_vars: t.Optional[t.Dict[str, t.Any]]) -> t.Dict[str, t.Any]:
        seconds = int(rollback["seconds"])
        problem = ""
        try:
            # A fresh connection proves that new management sessions still get through the new rules.
            self._connection.reset()
            confirmed = self._execute_module(module_name=CONFIRM, module_args={"token": rollback["token"]},
                                             task_vars=task_vars)
        except AnsibleError as exc:
            problem = f"no fresh connection to the host ({to_native(exc).strip().splitlines()[0]})"
            confirmed = {}
        except Exception as exc:
            problem = f"the confirmation failed ({to_native(exc)})"
            confirmed = {}
        if confirmed and not confirmed.get("failed"):
            result["rollback"] = dict(rollback, state="confirmed")
            return result
        if confirmed.get("kept"):
            result.update(failed=True, rollback=dict(rollback, state="confirmed"), msg=to_native(confirmed["msg"]))
            return result
        if confirmed.get("failed"):
            problem = problem or to_native(confirmed.get("msg", "the confirmation failed"))
        record = self._revert_record(rollback, armed, task_vars)
        result.update(failed=True, changed=False, rolled_back=True, rollback=dict(rollback, **_revert_state(record)))
        result["msg"] = _revert_message(problem, seconds, rollback, record)
        return result

    def _revert_record(self, rollback: t.Dict[str, t.Any], armed: float,
                       task_vars: t.Optional[t.Dict[str, t.Any]]) -> t.Optional[t.Dict[str, t.Any]]:
        """The host's own record of its revert (result.json), read over a fresh connection once its deadline has
        passed; None when it cannot be read within REVERT_GRACE seconds after the deadline."""
        deadline = armed + int(rollback["seconds"])
        path = f"{rollback['directory']}/result.json"
        attempt = deadline
        while True:
            wait = attempt - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            record = self._read_record(path, task_vars)
            if record is not None or time.monotonic() > deadline + REVERT_GRACE:
                return record
            attempt = time.monotonic() + 1

    def _read_record(self, path: str, task_vars: t.Optional[t.Dict[str, t.Any]]) -> t.Optional[t.Dict[str, t.Any]]:
        try:
            self._connection.reset()
            read = self._execute_module(module_name="ansible.builtin.slurp", module_args={"src": path},
                                        task_vars=task_vars)
        except Exception:  # the host (still) refuses new sessions: not readable yet
            return None
        if read.get("failed") or "content" not in read:
            return None
        try:
            record = json.loads(base64.b64decode(read["content"]).decode("utf-8"))
        except (ValueError, TypeError):
            return None
        return record if isinstance(record, dict) else None


def _revert_state(record: t.Optional[t.Mapping[str, t.Any]]) -> t.Dict[str, t.Any]:
    if record is None:
        return {"state": "unverified"}
    return {"state": "reverted" if record.get("ok") else "revert_failed", "result": dict(record)}


def _revert_message(problem: str, seconds: int, rollback: t.Mapping[str, t.Any],
                    record: t.Optional[t.Mapping[str, t.Any]]) -> str:
    cause = f"not confirmed: {problem}"
    if record is None:
        return (f"{cause}. The host's watchdog rolled back the change at its deadline (rollback_seconds={seconds}) "
                f"unless it could not run, but its record of that could not be read (no new session got in): "
                f"this is unverified, check {rollback['directory']}/result.json on the host")
    if record.get("ok"):
        return (f"rolled back: {cause}, so after rollback_seconds={seconds} the host restored its previous firewall "
                "state by itself, as its own record says (the management session would have been cut by this "
                "change)")
    failures = "; ".join(f"{' '.join(r.get('argv', []))} exited {r.get('rc')}: {str(r.get('stderr', '')).strip()}"
                         for r in record.get("results", []) if r.get("rc") != 0)
    return (f"{cause}; the host tried to roll back the change after rollback_seconds={seconds}, but its record "
            f"says restoring failed: {failures}")
