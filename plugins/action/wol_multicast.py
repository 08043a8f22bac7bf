# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Controller side of wol_multicast (documentation in plugins/modules/wol_multicast.py): work out the directed
# broadcast of every entry of `subnets` with the module's own broadcast_of and hand it to the module as
# BROADCAST/PREFIX (10.1.2.0/24 -> 10.1.2.255/24). The module derives the same by itself, so it also works without
# this plugin; entries it refuses are passed unchanged for the module to refuse with its message.
from __future__ import annotations

import typing as t

from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.action import ActionBase
from ansible_collections.protectnet.epns.plugins.module_utils._wol._validate import DestinationError, broadcast_of

MODULE = "protectnet.epns.wol_multicast"


def broadcasts(subnets: t.Sequence[t.Any]) -> t.Dict[str, t.List[str]]:
    """'10.1.2.0/24' or an interface address '10.1.2.7/24' -> {entry: ['10.1.2.255', '10.1.2.0/24']}.
    Entries that are not IPv4 networks, and /31-/32, are left for the module to refuse with its message."""
    out: t.Dict[str, t.List[str]] = {}
    for entry in subnets:
        try:
            out[str(entry)] = list(broadcast_of(str(entry)))
        except DestinationError:
            continue
    return out


def rewrite(entry: t.Any, computed: t.Mapping[str, t.Sequence[str]]) -> t.Any:
    found = computed.get(str(entry))
    if not found:
        return entry
    return f"{found[0]}/{found[1].split('/')[1]}"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp: t.Any = None, task_vars: t.Optional[t.Dict[str, t.Any]] = None) -> t.Dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        try:
            computed = broadcasts(args.get("subnets") or [])
            args["subnets"] = [rewrite(entry, computed) for entry in args.get("subnets") or []]
        except Exception as exc:
            result.update(failed=True, msg=f"subnets: {to_native(exc)}")
            return result
        result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
        return result
