# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# One proxy_connect_ports run: pick the proxy, compute the managed snippet and the include line, validate the
# candidate in a scratch directory, swap the files in, validate again in place, reload; on any failure put the
# previous files back (and reload them), so the running proxy keeps the configuration it had.
from __future__ import annotations

import os
import shutil
import tempfile
import typing as t
from dataclasses import dataclass, field

from .._host._files import FileMeta, write_file
from .._host._run import Runner
from .._result import command, file_change
from . import _bridge
from ._apache import Apache
from ._backend import Backend
from ._conf import Directive, find_block, read_config, with_block, without_block
from ._model import Limit, ProxyError, ProxyRequest
from ._squid import Squid


def _backends() -> t.Dict[str, Backend]:
    return {"squid": Squid(), "apache": Apache()}


def _short(rc: int, out: str, err: str) -> str:
    lines = [line for line in (err + "\n" + out).splitlines() if line.strip()]
    interesting = [line for line in lines if any(w in line for w in ("FATAL", "rror", "Bungled", "unrecognized",
                                                                     "Invalid", "Syntax", "AH0"))]
    chosen = (interesting or lines)[-5:]
    return f"rc={rc}: " + (" | ".join(s.strip() for s in chosen) if chosen else "no output")


class ApplyError(ProxyError):
    def __init__(self, message: str, restored: bool) -> None:
        super().__init__(message)
        self.restored = restored


def choose(request: ProxyRequest, runner: Runner) -> t.Tuple[Backend, str, str]:
    """(backend, binary, why)."""
    backends = _backends()
    if request.proxy != "auto":
        backend = backends[request.proxy]
        binary = backend.find_binary(runner)
        if not binary:
            raise ProxyError(f"{backend.name} is not installed here (none of {', '.join(backend.binaries)} found)")
        return backend, binary, f"{backend.name}: chosen by the proxy option"
    found = {name: (b, b.find_binary(runner)) for name, b in backends.items()}
    installed = {name: pair for name, pair in found.items() if pair[1]}
    if not installed:
        raise ProxyError("no supported proxy is installed here (squid, Apache httpd with apachectl); for ESET Bridge "
                         "use proxy=eset_bridge, which reports what to set in its ESET policy")
    if len(installed) == 1:
        name, (backend, binary) = next(iter(installed.items()))
        return backend, t.cast(str, binary), f"auto: {name} is the only supported proxy installed"
    running = []
    for name, (backend, binary) in installed.items():
        config = request.config_path or backend.default_config()
        try:
            if config and backend.is_running(runner, t.cast(str, binary), config)[0]:
                running.append(name)
        except ProxyError:
            continue
    if len(running) == 1:
        backend, binary = installed[running[0]]
        return backend, t.cast(str, binary), f"auto: {running[0]} is the only supported proxy running"
    raise ProxyError(f"both squid and Apache are installed and {'both' if running else 'neither'} runs; "
                     "set proxy to the one the agents use")


def _denied_by(backend: Backend, request: ProxyRequest, baseline: t.Sequence[Directive]) -> t.List[str]:
    if request.state != "present" or request.allow_connect_to_any_host:
        return []
    return backend.site_denies(request, baseline)


def _limits(items: t.Sequence[Limit]) -> t.List[t.Dict[str, t.Any]]:
    return [limit.as_dict() for limit in items]


@dataclass
class _Site:
    """The proxy this run changes, as found: backend, binary, files and whether it runs."""

    backend: Backend
    binary: str
    reason: str
    config: str
    root: str
    snippet_path: str
    main_before: str
    snippet_before: t.Optional[str]
    running: bool


@dataclass
class _Change:
    """The files as this run leaves them, the limits before and after, and what the user should know."""

    main_after: str
    snippet_after: t.Optional[str]
    limits_before: t.List[Limit]
    limits_after: t.List[Limit]
    denied_by: t.List[str]
    warnings: t.List[str]
    server_denied_by: t.List[str] = field(default_factory=list)


def run(request: ProxyRequest, runner: Runner, check_mode: bool) -> t.Dict[str, t.Any]:
    if request.proxy == "eset_bridge":
        return {"changed": False, "before": None, "after": None, "commands": [], "files": [],
                "proxy": "eset_bridge", "proxy_reason": "eset_bridge: chosen by the proxy option",
                "manual": True, "eset_bridge": _bridge.report(request.ports, request.allowed_sources),
                "warnings": ["ESET Bridge is configured through its ESET policy; nothing was changed, see "
                             "eset_bridge.manual_steps"]}
    site = _find(request, runner)
    change = _plan(request, runner, site)
    result = _describe(request, site, change)
    if not result["changed"]:
        return result
    commands = result["commands"]
    _validate_candidate(site.backend, site.binary, runner, site.config, site.root, site.snippet_path,
                        change.main_after, change.snippet_after, commands)
    result["validated"] = True
    if check_mode:
        return result
    _apply(site.backend, site.binary, runner, site.config, site.root, site.snippet_path,
           (site.main_before, site.snippet_before), (change.main_after, change.snippet_after),
           request.reload and site.running, commands)
    result["reloaded"] = request.reload and site.running
    return result


def _find(request: ProxyRequest, runner: Runner) -> _Site:
    """Read-only: pick the proxy, find and read its files, and refuse a reload of a proxy that does not run."""
    backend, binary, reason = choose(request, runner)
    backend.check_request(request)
    config = request.config_path or backend.default_config()
    if not config:
        raise ProxyError(f"{backend.name}: no configuration file found (looked for "
                         f"{', '.join(backend.default_configs)}); set config_path")
    config = os.path.abspath(config)
    main_before = read_config(config)
    if main_before is None:
        raise ProxyError(f"{backend.name}: configuration file {config} does not exist")
    snippet_path = os.path.abspath(request.snippet_path or backend.snippet_path(config))
    snippet_before = read_config(snippet_path)
    root = backend.server_root(config)
    try:
        running, how = backend.is_running(runner, binary, config)
    except ProxyError:
        if request.reload:
            raise
        running, how = False, "unknown"
    if request.reload and not running:
        raise ProxyError(f"{backend.name} is installed but not running ({how}); start it, or set reload=false to "
                         "only write the configuration")
    return _Site(backend, binary, reason, config, root, snippet_path, main_before, snippet_before, running)


def _plan(request: ProxyRequest, runner: Runner, site: _Site) -> _Change:
    """Pure but for the proxy's own preflight: the new files, from the configuration without our snippet."""
    backend, config, snippet_path = site.backend, site.config, site.snippet_path
    warnings = backend.preflight(runner, site.binary, config, request)
    # The configuration without our snippet: what the proxy would do on its own.
    baseline = backend.directives(config, {snippet_path: None, config: without_block(site.main_before)})
    limits_before = backend.limits(backend.directives(config, {}))
    baseline_limits = backend.limits(baseline)
    denied_by = _denied_by(backend, request, baseline)
    warnings += [f"{rule}: this rule of the site denies EPNS and keeps winning, so the agents' networks were not "
                 "allowed to CONNECT to it; change the rule if EPNS should pass" for rule in denied_by]
    server_denied_by = backend.site_denies(request, baseline, request.eset_server) \
        if request.state == "present" and request.eset_server else []
    warnings += [f"{rule}: this rule of the site denies the ESET PROTECT server and keeps winning, so the agents' "
                 "networks were not allowed to CONNECT to its agent port; change the rule if agents should "
                 "replicate through this proxy" for rule in server_denied_by]
    if request.state == "present":
        snippet_after: t.Optional[str] = backend.snippet(request, baseline, baseline_limits)
        main_after = with_block(site.main_before, backend.include_line(snippet_path), backend.include_position)
    else:
        snippet_after, main_after = None, without_block(site.main_before)
    limits_after = backend.limits(backend.directives(config, {snippet_path: snippet_after, config: main_after}))
    if request.state == "present" and request.raise_idle_timeouts:
        warnings += _overridden(request, limits_after)
    return _Change(main_after, snippet_after, limits_before, limits_after, denied_by, warnings, server_denied_by)


def _overridden(request: ProxyRequest, limits_after: t.Sequence[Limit]) -> t.List[str]:
    """The limits raise_idle_timeouts asked to raise that a directive read after the snippet keeps lower."""
    targets = {"read_timeout": request.idle_timeout, "client_lifetime": request.connection_lifetime,
               "effective_idle": request.idle_timeout}
    warnings = []
    for limit in limits_after:
        target = targets.get(limit.name)
        if target is not None and limit.seconds is not None and limit.seconds < target:
            warnings.append(f"{limit.name} stays {limit.value} ({limit.source}): a directive read after the "
                            "managed snippet overrides it; change it there")
    return warnings


def _files(snippet: t.Tuple[str, t.Optional[str], t.Optional[str]], main: t.Tuple[str, t.Optional[str], str],
           snippet_first: bool) -> t.List[t.Dict[str, str]]:
    """The `files` of the result, in the order they are written: the main file never names a missing snippet."""
    ordered = (snippet, main) if snippet_first else (main, snippet)
    changes = (file_change(path, before, after) for path, before, after in ordered)
    return [change for change in changes if change is not None]


def _describe(request: ProxyRequest, site: _Site, change: _Change) -> t.Dict[str, t.Any]:
    """The module's result before anything is validated or written."""
    backend, config, snippet_path = site.backend, site.config, site.snippet_path
    return {
        "changed": change.snippet_after != site.snippet_before or change.main_after != site.main_before,
        "proxy": backend.name, "proxy_reason": site.reason, "running": site.running,
        "config_path": config, "snippet_path": snippet_path,
        "include_line": backend.include_line(snippet_path) if request.state == "present" else None,
        "snippet": change.snippet_after, "limits": _limits(change.limits_before),
        "limits_after": _limits(change.limits_after), "limits_tradeoff": backend.limits_tradeoff,
        "epns_denied_by": change.denied_by, "eset_server_denied_by": change.server_denied_by,
        "validated": False, "reloaded": False, "commands": [],
        "before": {"snippet": site.snippet_before, "included": without_block(site.main_before) != site.main_before},
        "after": {"snippet": change.snippet_after, "included": request.state == "present"},
        "files": _files((snippet_path, site.snippet_before, change.snippet_after),
                        (config, site.main_before, change.main_after), snippet_first=change.snippet_after is not None),
        "diff": [{"before_header": snippet_path, "after_header": snippet_path,
                  "before": site.snippet_before or "", "after": change.snippet_after or ""},
                 {"before_header": config, "after_header": config, "before": site.main_before,
                  "after": change.main_after}],
        "warnings": change.warnings,
    }


def _validate_candidate(backend: Backend, binary: str, runner: Runner, config: str, root: str, snippet_path: str,
                        main_after: str, snippet_after: t.Optional[str], commands: t.List[t.Dict[str, t.Any]]) -> None:
    """Validate the new files in a scratch directory (the same in check mode): nothing under /etc changes."""
    scratch = tempfile.mkdtemp(prefix="protectnet_epns_proxy.")
    try:
        cand_main = os.path.join(scratch, os.path.basename(config))
        text = main_after
        if snippet_after is not None:
            cand_snippet = os.path.join(scratch, os.path.basename(snippet_path))
            write_file(cand_snippet, snippet_after)
            text = with_block(main_after, backend.include_line(cand_snippet), backend.include_position)
        write_file(cand_main, text)
        argv = backend.validate_argv(binary, cand_main, root)
        commands.append(command(argv))
        rc, out, err = runner.run(argv, cwd=os.path.dirname(config))
        if backend.failed(rc, out, err):
            current = backend.validate_argv(binary, config, root)
            rc2, out2, err2 = runner.run(current, cwd=os.path.dirname(config))
            if backend.failed(rc2, out2, err2):
                raise ProxyError(f"{backend.name}: the current configuration already fails validation "
                                 f"({' '.join(current)}: {_short(rc2, out2, err2)}); fix it first. Nothing was "
                                 "changed.")
            raise ProxyError(f"{backend.name}: the new configuration fails validation ({' '.join(argv)}: "
                             f"{_short(rc, out, err)}). Nothing was changed; the running proxy keeps its "
                             "configuration.")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _apply(backend: Backend, binary: str, runner: Runner, config: str, root: str, snippet_path: str,
           before: t.Tuple[str, t.Optional[str]], after: t.Tuple[str, t.Optional[str]], reload: bool,
           commands: t.List[t.Dict[str, t.Any]]) -> None:
    main_before, snippet_before = before
    main_after, snippet_after = after

    snippet_like = FileMeta.of(config)  # a snippet this run creates is readable the way the configuration is

    def restore() -> bool:
        try:
            write_file(config, main_before)
            write_file(snippet_path, snippet_before, snippet_like)
            return True
        except OSError:
            return False

    try:
        # snippet first: the main file never names a snippet that is not there (and on absent, the include goes first)
        if snippet_after is not None:
            write_file(snippet_path, snippet_after, snippet_like)
            write_file(config, main_after)
        else:
            write_file(config, main_after)
            write_file(snippet_path, None)
    except OSError as exc:
        restored = restore()
        raise ApplyError(f"{backend.name}: writing the configuration failed: {exc}; "
                         f"{'previous files restored' if restored else 'RESTORE FAILED, check ' + config}",
                         restored) from None
    argv = backend.validate_argv(binary, config, root)
    commands.append(command(argv))
    rc, out, err = runner.run(argv, cwd=os.path.dirname(config))
    if backend.failed(rc, out, err):
        restored = restore()
        raise ApplyError(f"{backend.name}: the configuration in place fails validation ({_short(rc, out, err)}); "
                         f"{'previous files restored, proxy not reloaded' if restored else 'RESTORE FAILED'}",
                         restored)
    if not reload:
        return
    argv = backend.reload_argv(binary, config, root)
    commands.append(command(argv))
    rc, out, err = runner.run(argv, cwd=os.path.dirname(config))
    if rc != 0:
        restored = restore()
        if restored:
            runner.run(argv, cwd=os.path.dirname(config))
        raise ApplyError(f"{backend.name}: reload failed ({' '.join(argv)}: {_short(rc, out, err)}); "
                         f"{'previous files restored and reloaded' if restored else 'RESTORE FAILED'}", restored)


def include_present(text: str) -> bool:
    return find_block(text.splitlines(keepends=True)) is not None
