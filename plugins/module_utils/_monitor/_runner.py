# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# epns-probe: one monitoring run (--once: lock, schedule, probe, state, history, metrics) or a check on demand
# (without --once: the full MQTT check, printed, nothing written). Exit codes by verdict: 0 reachable,
# 1 degraded, 2 unreachable, 3 usage or internal error, 4 skipped (another run holds the lock).
from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
import typing as t
from dataclasses import fields

from .._agent import AgentConfigError, observe
from .._host._files import FileMeta, write_file
from .._probe._options import ProbeConfigError, ProbeOptions
from . import _metrics, _schedule, _store

CONFIG = "/etc/protectnet-epns/monitor.json"
STATE_DIR = "/var/lib/protectnet-epns"
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"
METRICS_FILE = "epns.prom"
EXIT_CODES = {"reachable": 0, "degraded": 1, "unreachable": 2}
EXIT_ERROR, EXIT_SKIPPED = 3, 4
# The runner picks its own random client ids (the probe's prefix): an agent's id would end the agent's session.
RUNNER_SETS = ("hold_seconds", "ping_interval", "mqtt_client_id")
PROBE_KEYS = tuple(f.name for f in fields(ProbeOptions) if f.name not in RUNNER_SETS)


class Config(t.NamedTuple):
    probe: ProbeOptions
    schedule: _schedule.Schedule
    state_dir: str = STATE_DIR
    textfile_dir: str = TEXTFILE_DIR
    history_keep: int = 500


class UsageError(Exception):
    """Bad arguments or configuration: exit code 3 with the message."""


def load_config(path: t.Optional[str]) -> Config:
    """The runner's configuration file (the module writes it); without one (and none asked for), the defaults."""
    if path is None and not os.path.exists(CONFIG):
        return Config(ProbeOptions(), _schedule.Schedule())
    chosen = path or CONFIG
    try:
        with open(chosen, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the configuration {chosen}: {exc}") from None
    return parse_config(data, chosen)


def parse_config(data: t.Any, source: str = "the configuration") -> Config:
    if not isinstance(data, dict):
        raise UsageError(f"{source}: expected a JSON object, not {type(data).__name__}")
    probe = data.get("probe") or {}
    unknown = sorted(set(probe) - set(PROBE_KEYS)) if isinstance(probe, dict) else ["(not an object)"]
    if unknown:
        raise UsageError(f"{source}: probe options {', '.join(unknown)} are not accepted; accepted: "
                         f"{', '.join(PROBE_KEYS)}")
    schedule = _schedule.Schedule(**{k: data[k] for k in _schedule.Schedule._fields if k in data})
    for name in _schedule.Schedule._fields[1:]:
        value = getattr(schedule, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UsageError(f"{source}: {name} is {value!r}; accepted: a whole number, 0 or more")
    keep = data.get("history_keep", 500)
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise UsageError(f"{source}: history_keep is {keep!r}; accepted: a whole number, 1 or more")
    return Config(ProbeOptions(**probe), schedule, str(data.get("state_dir", STATE_DIR)),
                  str(data.get("textfile_dir", TEXTFILE_DIR)), keep)


def run_once(config: Config, mode: t.Optional[str] = None, clock: t.Callable[[], float] = time.time
             ) -> t.Tuple[int, t.Dict[str, t.Any]]:
    """One monitoring run under the lock: (exit code, what it did). A held lock: the run is skipped and counted."""
    if not os.path.isdir(config.state_dir):
        raise UsageError(f"state directory {config.state_dir} does not exist (the module creates it)")
    lock = _store.Lock(config.state_dir)
    if not lock.acquire():
        count = _store.count_skip(config.state_dir)
        return EXIT_SKIPPED, {"skipped": True, "runs_skipped_total": count,
                              "message": "skipped: another run holds the lock"}
    try:
        return _locked_run(config, mode, clock)
    finally:
        lock.release()


def _locked_run(config: Config, mode: t.Optional[str], clock: t.Callable[[], float]
                ) -> t.Tuple[int, t.Dict[str, t.Any]]:
    state = _store.load_state(config.state_dir)
    started = clock()
    chosen = mode or _schedule.choose_mode(config.schedule, state, started)
    result = None if chosen == "passive" else _schedule.run_mode(chosen, config.probe, config.schedule)
    agent = agent_connection(config.probe)
    ended = clock()
    state["paths"] = _metrics.remember(state.get("paths") or {}, result, chosen, ended)
    _schedule.mark_done(state, chosen, ended)
    _store.save_state(config.state_dir, state)
    entry = dict(history_entry(result, chosen, started, ended), agent_connection=agent)
    lines = _store.append_history(config.state_dir, entry, config.history_keep)
    metrics = _metrics.run_metrics(result, chosen, state["paths"], ended, ended - started,
                                   _store.skipped(config.state_dir), agent)
    target = os.path.join(config.textfile_dir, METRICS_FILE)
    # node_exporter reads only *.prom: the writer's temporary ".pn-*" file in the same directory is never read.
    write_file(target, metrics.render(), FileMeta(0o644))
    code = EXIT_CODES.get(str((result or {}).get("verdict")), 0)
    return code, {"skipped": False, "mode": chosen, "metrics_file": target, "history_lines": lines,
                  "history": entry, "result": result, "agent_connection": agent}


def agent_connection(probe: ProbeOptions) -> t.Dict[str, t.Any]:
    """The passive check (_agent): whether the ESET agent itself holds a connection to EPNS or its proxy now.
    Reads /proc only; sends nothing."""
    try:
        seen = observe(proxies=list(probe.proxies), ports=[probe.primary_port, probe.fallback_port],
                       epns_host=probe.host)
    except AgentConfigError as exc:
        raise UsageError(f"the agent connection check: {exc}") from None
    return dict(seen.summary, message=seen.message)


def history_entry(result: t.Optional[t.Mapping[str, t.Any]], mode: str, started: float, ended: float
                  ) -> t.Dict[str, t.Any]:
    """One line of the history: enough for "last seen working" without the full probe result."""
    paths = []
    for path in (result or {}).get("paths") or []:
        failure = path.get("failure") or {}
        paths.append(dict(_metrics.path_labels(path), id=path.get("id"), ok=bool(path.get("ok")),
                          failure_class=failure.get("class"), failure_stage=failure.get("stage")))
    return {"time": round(ended, 3), "duration_seconds": round(ended - started, 3), "mode": mode,
            "verdict": (result or {}).get("verdict"), "verdict_reason": (result or {}).get("verdict_reason"),
            "paths": paths}


def describe(result: t.Optional[t.Mapping[str, t.Any]], mode: str,
             agent: t.Optional[t.Mapping[str, t.Any]] = None) -> str:
    """The human-readable report of a result: the verdict, then one line per path, then the agent's own connection."""
    tail = [f"  the agent itself: {agent.get('message')}"] if agent else []
    if result is None:
        return "\n".join([f"mode {mode}: no probe traffic (passive)", *tail]) + "\n"
    lines = [f"EPNS {result.get('host')}: {result.get('verdict')} ({mode}) - {result.get('verdict_reason')}"]
    for path in result.get("paths") or []:
        failure = path.get("failure") or {}
        stages = " ".join(f"{k} {v:.3f}s" for k, v in _metrics.stage_seconds(_metrics.telling_attempt(path)).items())
        state = "ok" if path.get("ok") else f"FAILED {failure.get('class')} at {failure.get('stage')}"
        lines.append(f"  {path.get('id')}: {state}; {stages}".rstrip("; "))
        if not path.get("ok") and failure.get("message"):
            lines.append(f"    {failure['message']}")
    return "\n".join(lines + tail) + "\n"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> t.NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def parser() -> argparse.ArgumentParser:
    made = _Parser(prog="epns-probe", formatter_class=argparse.RawDescriptionHelpFormatter,
                   description="Check the paths to ESET's push notification service (EPNS) from this host "
                   "(protectnet.epns).",
                   epilog="exit codes: 0 reachable, 1 degraded (only the fallback works), 2 unreachable,\n"
                   "            3 usage or internal error, 4 skipped (another run holds the lock)")
    made.add_argument("--config", help=f"the runner's configuration (default {CONFIG}, if it exists)")
    made.add_argument("--once", action="store_true",
                      help="one monitoring run: lock, schedule, probe, metrics and history (what the timer runs)")
    made.add_argument("--mode", choices=("auto", *_schedule.MODES), default="auto",
                      help="what to check; auto: with --once the schedule decides, without it mqtt")
    made.add_argument("--json", action="store_true", help="print the result as JSON")
    made.add_argument("--jitter", type=float, default=0.0, metavar="SECONDS",
                      help="first wait a random 0 to SECONDS (cron's entry; systemd's timer has its own)")
    made.add_argument("--quiet", action="store_true", help="print nothing unless the run fails to run")
    return made


def main(argv: t.Optional[t.Sequence[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        config = load_config(args.config)
        mode = None if args.mode == "auto" else args.mode
        if args.jitter > 0:
            time.sleep(secrets.randbelow(int(min(args.jitter, 3600.0) * 1000) + 1) / 1000)
        if args.once:
            code, done = run_once(config, mode)
        else:
            chosen = mode or "mqtt"
            result = None if chosen == "passive" else _schedule.run_mode(chosen, config.probe, config.schedule)
            agent = agent_connection(config.probe)
            code = EXIT_CODES.get(str((result or {}).get("verdict")), 0)
            done = {"mode": chosen, "result": result, "agent_connection": agent}
    except (UsageError, ProbeConfigError, OSError, TypeError) as exc:
        sys.stderr.write(f"epns-probe: {exc}\n")
        return EXIT_ERROR
    if not args.quiet:
        if args.json:
            sys.stdout.write(json.dumps(done, sort_keys=True, indent=1) + "\n")
        elif done.get("skipped"):
            sys.stdout.write(f"epns-probe: {done['message']} ({done['runs_skipped_total']} skipped so far)\n")
        else:
            sys.stdout.write(describe(done.get("result"), done["mode"], done.get("agent_connection")))
    return code
