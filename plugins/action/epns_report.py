# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Controller-side action: writes the EPNS fleet report. The documentation is in plugins/modules/epns_report.py.
from __future__ import annotations

import datetime
import os
import tempfile
import typing as t

from ansible.errors import AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible_collections.protectnet.epns.plugins.plugin_utils._report._model import build_report
from ansible_collections.protectnet.epns.plugins.plugin_utils._report._normalise import (
    ReportInputError,
    normalize_phases,
)
from ansible_collections.protectnet.epns.plugins.plugin_utils._report._render import (
    FORMATS,
    digest_of,
    render,
    substance_digest,
    with_digest,
)

DEFAULT_FORMATS = ["markdown", "html", "json", "junit"]
display = Display()

ARGUMENT_SPEC: t.Dict[str, t.Any] = {
    "results": {"type": "dict"},
    "phases": {"type": "list", "elements": "dict"},
    "phase": {"type": "str"},
    "hosts": {"type": "list", "elements": "str"},
    "dest": {"type": "path", "required": True},
    "formats": {"type": "list", "elements": "str", "choices": list(FORMATS), "default": DEFAULT_FORMATS},
    "basename": {"type": "str", "default": "epns-report"},
    "title": {"type": "str", "default": "EPNS reachability"},
    "generated_at": {"type": "str"},
    "template_dir": {"type": "path"},
    "sections": {"type": "list", "elements": "dict"},
    "show_summary": {"type": "bool", "default": False},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)
    # Everything happens on the controller: no connection to the target is opened.
    _requires_connection = False

    def run(self, tmp: t.Any = None, task_vars: t.Optional[t.Dict[str, t.Any]] = None) -> t.Dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        del tmp
        validation, args = self.validate_argument_spec(
            argument_spec=ARGUMENT_SPEC,
            mutually_exclusive=[("results", "phases"), ("phase", "phases")],
            required_one_of=[("results", "phases")],
        )
        del validation

        formats = list(dict.fromkeys(args["formats"]))  # keep the order, drop repeats
        if not formats:
            return self._fail(result, "formats must name at least one of: {}".format(", ".join(FORMATS)))
        basename = args["basename"]
        if not basename or basename in (".", "..") or "/" in basename or os.sep in basename or "\0" in basename:
            return self._fail(result, f"basename must be a plain file name without a directory, got {basename!r}")

        try:
            inputs = normalize_phases(
                results=args["results"], phases=args["phases"], phase=args["phase"], hosts=args["hosts"]
            )
            now = datetime.datetime.now(datetime.timezone.utc)
            generated_at = args["generated_at"] or now.strftime("%Y-%m-%dT%H:%M:%SZ")
            model = build_report(inputs, title=args["title"], generated_at=generated_at, sections=args["sections"])
        except ReportInputError as exc:
            return self._fail(result, f"invalid report input: {exc}")

        dest = os.path.abspath(os.path.expanduser(args["dest"]))
        templates = self._templates(formats, args["template_dir"])
        if isinstance(templates, str):
            return self._fail(result, templates)

        paths: t.Dict[str, str] = {}
        changed_paths: t.List[str] = []
        diff_before: t.List[str] = []
        diff_after: t.List[str] = []
        check_mode = bool(self._task.check_mode)
        for fmt in formats:
            path = os.path.join(dest, f"{basename}.{FORMATS[fmt][1]}")
            paths[fmt] = path
            template = templates.get(fmt)
            try:
                rendered = render(fmt, model, inputs, template)
            except Exception as exc:  # a broken override template must say which one
                return self._fail(result, f"cannot render the {fmt} report: {to_native(exc)}")
            # A report that differs only in timings and the time of writing says nothing new: it is left as it
            # is, so a second run over an unchanged network reports no change.
            digest = substance_digest(fmt, _read(template) if template else None, inputs, args["title"],
                                      args["sections"])
            data = with_digest(fmt, rendered, digest).encode("utf-8", "replace")
            existing = _read(path)
            if existing is not None and digest_of(existing.decode("utf-8", "replace")) == digest:
                continue
            changed_paths.append(path)
            diff_before.append(f"{path}: " + ("absent" if existing is None else f"{len(existing)} bytes"))
            diff_after.append(f"{path}: {len(data)} bytes")
            if not check_mode:
                try:
                    _write_atomic(path, data)
                except OSError as exc:
                    return self._fail(result, f"cannot write {path}: {to_native(exc)}", paths=paths)

        model["generated_at"] = generated_at
        result.update(
            changed=bool(changed_paths),
            paths=paths,
            changed_paths=changed_paths,
            summary=model["summary"],
            summary_lines=model["summary_lines"],
            model=model,
        )
        if args["show_summary"]:
            # Printed by the action itself, so a playbook needs no extra task just to show the outcome.
            for line in [*model["summary_lines"], "report: " + ", ".join(paths.values())]:
                display.display(line)
        if self._task.diff and changed_paths:
            result["diff"] = {
                "before_header": dest,
                "after_header": dest,
                "before": "\n".join(diff_before) + "\n",
                "after": "\n".join(diff_after) + "\n",
            }
        return result

    def _templates(self, formats: t.Sequence[str], template_dir: t.Optional[str]) -> t.Union[t.Dict[str, str], str]:
        """format -> template file to use; absent: the collection's own. A string is an error message."""
        found: t.Dict[str, str] = {}
        for fmt in formats:
            name = FORMATS[fmt][0]
            if name is None:
                continue
            if template_dir:
                path = os.path.join(os.path.abspath(os.path.expanduser(template_dir)), name)
                if not os.path.isfile(path):
                    return f"template_dir {template_dir} has no {name} (needed for the {fmt} format)"
                found[fmt] = path
            elif self._task._role is not None:
                # Inside a role (this collection's or one wrapping it): its templates/ may override ours.
                try:
                    found[fmt] = self._find_needle("templates", name)
                except AnsibleFileNotFound:
                    pass
        return found

    @staticmethod
    def _fail(result: t.Dict[str, t.Any], msg: str, **extra: t.Any) -> t.Dict[str, t.Any]:
        result.update(failed=True, changed=False, msg=msg, **extra)
        return result


def _read(path: str) -> t.Optional[bytes]:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _write_atomic(path: str, data: bytes) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    except BaseException:
        try:
            os.unlink(tmp_path)
        except FileNotFoundError:
            pass
        raise
