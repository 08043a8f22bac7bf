# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""The one result shape of every module that changes something (documented once, in the doc fragment
plugins/doc_fragments/_result.py and docs/results.md): changed, before, after, commands, files, diff, warnings.
Stdlib only: it runs on the managed host."""
from __future__ import annotations

import typing as t

FILE_ACTIONS = ("created", "updated", "removed")


def command(argv: t.Sequence[t.Any], stdin: t.Optional[str] = None) -> t.Dict[str, t.Any]:
    """One command run on the host (or, in check mode, that would be): its argv and what it reads on stdin."""
    return {"argv": [str(arg) for arg in argv], "stdin": stdin}


def file_change(path: str, before: t.Optional[str], after: t.Optional[str]) -> t.Optional[t.Dict[str, str]]:
    """The `files` entry of a file whose content goes from before to after (None: absent); None when unchanged."""
    if before == after:
        return None
    return {"path": path, "action": "removed" if after is None else "created" if before is None else "updated"}


def file_entry(path: str, action: str) -> t.Dict[str, str]:
    if action not in FILE_ACTIONS:
        raise ValueError(f"file action {action!r} is not one of {', '.join(FILE_ACTIONS)}")
    return {"path": path, "action": action}


def _checked_command(entry: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    if set(entry) != {"argv", "stdin"} or not isinstance(entry["argv"], list) \
            or not (entry["stdin"] is None or isinstance(entry["stdin"], str)):
        raise ValueError(f"a command is {{argv: [...], stdin: str or null}}, not {entry!r}")
    return dict(entry)


def change_result(changed: bool, before: t.Any, after: t.Any, commands: t.Iterable[t.Mapping[str, t.Any]] = (),
                  files: t.Iterable[t.Mapping[str, str]] = (), **module_keys: t.Any) -> t.Dict[str, t.Any]:
    """The result of a module that changes something: the common keys, checked, plus the module's own keys
    (diff and warnings among them, when there are any)."""
    result = dict(module_keys)
    result.update(changed=bool(changed), before=before, after=after,
                  commands=[_checked_command(c) for c in commands],
                  files=[file_entry(f["path"], f["action"]) for f in files])
    return result


def exit_changed(module: t.Any, result: t.Dict[str, t.Any]) -> None:
    """module.warn each warning of the result, keep the diff only with --diff, exit with the rest."""
    for warning in result.pop("warnings", []):
        module.warn(warning)
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)
