# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Controller side of epns_firewall (documentation in plugins/modules/epns_firewall.py):
#   1. expand the entry eset_published[:/path/file.yml] to ESET's published EPNS networks (plugin_utils/_published,
#      a controller-side file), then validate and normalise extra_destinations (host bits rejected, overlaps merged)
#      with the module's own normalise_destinations, so a bad entry fails before the host is contacted;
#   2. run the module on the host;
#   3. with rollback_seconds, when the module armed a rollback: reset the connection and confirm over a fresh
#      one (epns_firewall_confirm). No confirmation -> the host reverts by itself; the task fails saying so.
from __future__ import annotations

import base64
import ipaddress
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
from ansible_collections.protectnet.epns.plugins.plugin_utils._published import (
    PUBLISHED_NAME,
    Published,
    PublishedError,
    load_published,
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
            entries, published = expand_published(entries, self._on_controller)
            given = len(entries)
            args["extra_destinations"] = _normalised(entries)
        except FirewallError as exc:
            result.update(failed=True, changed=False, msg=str(exc))
            return result

        module_result = self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)
        # The host armed its rollback before the module returned: its deadline is at most `seconds` from here.
        armed = time.monotonic()
        result.update(module_result)
        if published:
            result["published"] = published
        if given != len(args["extra_destinations"]):
            result["extra_destinations_merged"] = args["extra_destinations"]
        rollback = module_result.get("rollback")
        if module_result.get("failed") or not rollback:
            return result
        return self._confirm(result, rollback, armed, task_vars)

    def _on_controller(self, path: str) -> str:
        # Looked up only for a named file, so a plugin made without a loader (the rollback tests) still runs.
        return self._loader.path_dwim(path)

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


def expand_published(entries: t.Sequence[t.Any], resolve: t.Callable[[str], str],
                     ) -> t.Tuple[t.List[t.Any], t.List[t.Dict[str, t.Any]]]:
    """extra_destinations with each entry `eset_published` (the collection's list) or `eset_published:PATH` (a
    user's file of the same layout; a relative PATH is resolved by `resolve`, the playbook's way) replaced by the
    list's networks; and, per list used, what it was (path, date, source, networks) for the task's result."""
    expanded: t.List[t.Any] = []
    used: t.List[t.Dict[str, t.Any]] = []
    for entry in entries:
        text = entry.strip() if isinstance(entry, str) else ""
        name, sep, path = text.partition(":")
        if name != PUBLISHED_NAME:
            expanded.append(entry)
            continue
        if sep and not path.strip():
            raise FirewallError(f"extra_destinations: {entry!r} names no file after '{PUBLISHED_NAME}:'; "
                                f"accepted: {PUBLISHED_NAME} or {PUBLISHED_NAME}:/path/to/file.yml")
        try:
            published = load_published(resolve(path.strip()) if sep else None)
        except PublishedError as exc:
            raise FirewallError(f"extra_destinations: {entry!r}: {exc}") from None
        expanded.extend(n.with_prefixlen for n in published.networks)
        used.append(_published_summary(published))
    return expanded, used


def _published_summary(published: Published) -> t.Dict[str, t.Any]:
    return {"path": published.path, "date": published.date, "source": published.source,
            "networks": [n.with_prefixlen for n in published.networks]}


def _normalised(entries: t.Sequence[t.Any]) -> t.List[str]:
    try:
        return normalise_destinations(entries)
    except FirewallError as exc:
        if any(not _is_network(e) for e in entries):
            raise FirewallError(f"{exc} (besides addresses and CIDRs, an entry may be {PUBLISHED_NAME} or "
                                f"{PUBLISHED_NAME}:/path/to/file.yml: ESET's published EPNS addresses)") from None
        raise


def _is_network(entry: t.Any) -> bool:
    try:
        ipaddress.ip_network(str(entry).strip(), strict=False)
    except ValueError:
        return False
    return True


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
