# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Controller side of epns_firewall (documentation in plugins/modules/epns_firewall.py):
#   1. validate and normalise extra_destinations with netaddr (host bits rejected, overlaps merged);
#   2. run the module on the host;
#   3. with rollback_seconds, when the module armed a rollback: reset the connection and confirm over a fresh
#      one (epns_firewall_confirm). No confirmation -> the host reverts by itself; the task fails saying so.
from __future__ import annotations

import time
import typing as t

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.action import ActionBase

try:
    import netaddr
except ImportError:  # pragma: no cover - reported when the task runs
    netaddr = None

MODULE = "protectnet.epns.epns_firewall"
CONFIRM = "protectnet.epns.epns_firewall_confirm"


class DestinationError(ValueError):
    pass


def normalise_destinations(entries: t.Sequence[t.Any]) -> t.List[str]:
    """Validate every entry (address or CIDR, no host bits) and merge overlaps; raise naming each bad entry."""
    if netaddr is None:
        raise DestinationError("the netaddr Python library is required on the controller (pip install netaddr)")
    problems: t.List[str] = []
    networks = []
    for entry in entries:
        text = str(entry).strip()
        try:
            network = netaddr.IPNetwork(text)
        except (netaddr.AddrFormatError, ValueError, TypeError):
            problems.append(f"{text!r} is not an IPv4/IPv6 address or CIDR (expected e.g. 91.228.165.144/28 "
                            "or 2001:db8::/64)")
            continue
        if "/" in text and network.ip != network.network:
            single = f"{network.ip}/{32 if network.version == 4 else 128}"
            problems.append(f"{text!r} has host bits set: the network is {network.cidr} (or write the single address "
                            f"as {single})")
            continue
        networks.append(network.cidr)
    if problems:
        raise DestinationError("extra_destinations: " + "; ".join(problems))
    return [str(n) for n in netaddr.cidr_merge(networks)]


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
                raise DestinationError(f"extra_destinations must be a list of addresses or CIDRs, got {entries!r}")
            given = len(entries)
            args["extra_destinations"] = normalise_destinations(entries)
        except DestinationError as exc:
            result.update(failed=True, changed=False, msg=str(exc))
            return result

        started = time.monotonic()
        module_result = self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)
        result.update(module_result)
        if given != len(args["extra_destinations"]):
            result["extra_destinations_merged"] = args["extra_destinations"]
        rollback = module_result.get("rollback")
        if module_result.get("failed") or not rollback:
            return result
        return self._confirm(result, rollback, started, task_vars)

    def _confirm(self, result: t.Dict[str, t.Any], rollback: t.Dict[str, t.Any], started: float,
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
        if confirmed.get("failed"):
            problem = problem or to_native(confirmed.get("msg", "the confirmation failed"))
        # The host's deadline is at most `seconds` after the module returned; wait for it so the ruleset is back
        # when this task reports.
        remaining = started + seconds + 2 - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)
        result.update(
            failed=True, changed=False, rolled_back=True,
            rollback=dict(rollback, state="reverted"),
            msg=f"rolled back: {problem}, so after rollback_seconds={seconds} the host restored its previous "
                "firewall state by itself (the management session would have been cut by this change)")
        return result
