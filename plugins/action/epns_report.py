# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Controller-side action: writes the EPNS fleet report. The documentation is in plugins/modules/epns_report.py.
from __future__ import annotations

import datetime
import os
import typing as t

from ansible.errors import AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible_collections.protectnet.epns.plugins.module_utils._host._files import FileMeta, write_file
from ansible_collections.protectnet.epns.plugins.plugin_utils._published import (
    PublishedError,
    load_published,
    outside,
)
from ansible_collections.protectnet.epns.plugins.plugin_utils._report._model import (
    DEFAULT_STALE_AFTER,
    FleetContext,
    build_report,
)
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
# What the report says besides the results: a change in any of them is a change of the report.
FLEET_OPTIONS = ("hosts_info", "eset_inventory", "stale_after", "published_addresses")
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
    "return_model": {"type": "bool", "default": False},
    "hosts_info": {"type": "dict"},
    "eset_inventory": {"type": "dict"},
    "stale_after": {"type": "str", "default": DEFAULT_STALE_AFTER},
    "published_addresses": {"type": "path"},
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
        problem = _option_problem(formats, args["basename"])
        if problem:
            return self._fail(result, problem)
        try:
            inputs, model = _build_model(args)
        except ReportInputError as exc:
            return self._fail(result, f"invalid report input: {exc}")
        templates = self._templates(formats, args["template_dir"])
        if isinstance(templates, str):
            return self._fail(result, templates)
        dest = os.path.abspath(os.path.expanduser(args["dest"]))
        try:
            planned = _plan_files(formats, dest, args, model, inputs, templates)
        except _PlanError as exc:
            return self._fail(result, str(exc))
        paths = {one.fmt: one.path for one in planned}
        changes = [one for one in planned if one.changes]
        if not self._task.check_mode:
            for one in changes:
                try:
                    _write(one.path, one.data)
                except OSError as exc:
                    return self._fail(result, f"cannot write {one.path}: {to_native(exc)}", paths=paths)
        result.update(_describe(dest, paths, changes, model, with_diff=bool(self._task.diff)))
        if args["return_model"]:
            # Off by default: at fleet scale the model is megabytes that every later task would carry.
            result["model"] = model
        if args["show_summary"]:
            # Printed by the action itself, so a playbook needs no extra task just to show the outcome.
            for line in [*model["summary_lines"], "report: " + ", ".join(paths.values())]:
                display.display(line)
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


class _PlanError(Exception):
    """A file cannot be planned: its format does not render (a broken override template) or the file in its place
    cannot be read; the message says which."""


class _PlannedFile(t.NamedTuple):
    fmt: str
    path: str
    data: bytes
    existing_size: t.Optional[int]  # None: the file does not exist yet
    changes: bool


def _option_problem(formats: t.Sequence[str], basename: str) -> t.Optional[str]:
    if not formats:
        return "formats must name at least one of: {}".format(", ".join(FORMATS))
    if not basename or basename in (".", "..") or "/" in basename or os.sep in basename or "\0" in basename:
        return f"basename must be a plain file name without a directory, got {basename!r}"
    return None


def _build_model(args: t.Mapping[str, t.Any]) -> t.Tuple[t.List[t.Dict[str, t.Any]], t.Dict[str, t.Any]]:
    inputs = normalize_phases(results=args["results"], phases=args["phases"], phase=args["phase"], hosts=args["hosts"])
    now = datetime.datetime.now(datetime.timezone.utc)
    generated_at = args["generated_at"] or now.strftime("%Y-%m-%dT%H:%M:%SZ")
    model = build_report(inputs, title=args["title"], generated_at=generated_at, sections=args["sections"],
                         fleet=_fleet_context(args))
    return inputs, model


def _fleet_context(args: t.Mapping[str, t.Any]) -> FleetContext:
    """The inventory's facts and ESET's published addresses for the report's fleet parts."""
    published, outside_published = _published(args["published_addresses"])
    return FleetContext(hosts_info=args["hosts_info"], eset_inventory=args["eset_inventory"],
                        stale_after=args["stale_after"], published=published, outside_published=outside_published)


def _published(path: t.Optional[str]) -> t.Tuple[t.Optional[t.Dict[str, t.Any]], t.Any]:
    """ESET's published EPNS addresses (the collection's data file unless ``path`` names another) and the check
    of a host's DNS answers against them."""
    try:
        published = load_published(path)
    except PublishedError as exc:
        raise ReportInputError(f"published_addresses: {to_native(exc)}") from exc
    meta = {"source": published.source, "date": published.date, "path": published.path}
    return meta, lambda addresses: outside(published, addresses)


def _plan_files(
    formats: t.Sequence[str],
    dest: str,
    args: t.Mapping[str, t.Any],
    model: t.Mapping[str, t.Any],
    inputs: t.Sequence[t.Mapping[str, t.Any]],
    templates: t.Mapping[str, str],
) -> t.List[_PlannedFile]:
    """Each format's file with its new content, and whether writing it would change what the file says."""
    planned = []
    # What the results say is digested once; each format adds its template on top (see substance_digest).
    said = substance_digest(inputs, args["title"], args["sections"], *(args[name] for name in FLEET_OPTIONS))
    for fmt in formats:
        path = os.path.join(dest, "{}.{}".format(args["basename"], FORMATS[fmt][1]))
        template = templates.get(fmt)
        try:
            rendered = render(fmt, model, inputs, template)
        except Exception as exc:  # a broken override template must say which one
            raise _PlanError(f"cannot render the {fmt} report: {to_native(exc)}") from exc
        # A report that differs only in timings and the time of writing says nothing new: it is left as it
        # is, so a second run over an unchanged network reports no change.
        digest = substance_digest(fmt, _read(template) if template else None, said)
        try:
            existing = _read(path)
        except OSError as exc:  # e.g. dest runs through a regular file
            raise _PlanError(f"cannot read {path}: {to_native(exc)}") from exc
        same = existing is not None and digest_of(existing.decode("utf-8", "replace")) == digest
        data = with_digest(fmt, rendered, digest).encode("utf-8", "replace")
        planned.append(_PlannedFile(fmt, path, data, None if existing is None else len(existing), not same))
    return planned


def _describe(
    dest: str,
    paths: t.Mapping[str, str],
    changes: t.Sequence[_PlannedFile],
    model: t.Mapping[str, t.Any],
    with_diff: bool,
) -> t.Dict[str, t.Any]:
    """The task result: the collection's change vocabulary (files, commands) beside this action's own keys."""
    described: t.Dict[str, t.Any] = {
        "changed": bool(changes),
        "paths": dict(paths),
        "changed_paths": [one.path for one in changes],
        "files": [{"path": one.path, "action": "updated" if one.existing_size is not None else "created"}
                  for one in changes],
        "commands": [],
        "summary": model["summary"],
        "summary_lines": model["summary_lines"],
    }
    if with_diff and changes:
        before = [f"{one.path}: " + ("absent" if one.existing_size is None else f"{one.existing_size} bytes")
                  for one in changes]
        described["diff"] = {
            "before_header": dest,
            "after_header": dest,
            "before": "\n".join(before) + "\n",
            "after": "".join(f"{one.path}: {len(one.data)} bytes\n" for one in changes),
        }
    return described


def _read(path: str) -> t.Optional[bytes]:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _write(path: str, data: bytes) -> None:
    """The collection's one writer: a report that exists keeps its mode and owner, a new one is 0666 & ~umask."""
    umask = os.umask(0)
    os.umask(umask)
    write_file(path, data.decode("utf-8", "surrogateescape"), FileMeta(0o666 & ~umask))
