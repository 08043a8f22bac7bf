# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The Prometheus text file of one run (exposition format 0.0.4, read by node_exporter's textfile collector).
# Label values are bounded: ports, direct|proxy, the configured proxy's host:port, failure classes and stages of
# the probe, a SHA-256 of the TLS issuer - never a message or other free text.
from __future__ import annotations

import hashlib
import typing as t
from urllib.parse import urlsplit

from .. import _epns

Labels = t.Mapping[str, str]
GAUGE, COUNTER = "gauge", "counter"
# name -> (type, help). docs/monitoring.md "Metrics" documents the same table.
METRICS: t.Dict[str, t.Tuple[str, str]] = {
    "epns_path_up": (GAUGE, "1 when the path reaches EPNS in the last run, else 0"),
    "epns_path_failure": (GAUGE, "1 for the failure class and stage of a failing path"),
    "epns_path_stage_seconds": (GAUGE, "How long each stage of the path took in the last run"),
    "epns_path_last_success_timestamp_seconds": (GAUGE, "When the path last worked (Unix time)"),
    "epns_path_hold_survived_seconds": (GAUGE, "The longest hold survived in the last hold run (until a cut was seen)"),
    "epns_path_idle_cut": (GAUGE, "1 when the last hold was cut while idle"),
    "epns_tls_issuer_info": (GAUGE, "The SHA-256 of the TLS issuer name the path saw"),
    "epns_tls_interception_suspected": (GAUGE, "1 when the path's TLS looks intercepted"),
    "epns_verdict": (GAUGE, "One-hot verdict of the host's last active run"),
    "epns_agent_connection_up": (GAUGE, "1 when the ESET agent itself holds a connection to EPNS (passive)"),
    "epns_probe_last_run_timestamp_seconds": (GAUGE, "When the last run ended (Unix time)"),
    "epns_probe_run_duration_seconds": (GAUGE, "How long the last run took"),
    "epns_probe_runs_skipped_total": (COUNTER, "Runs skipped because another run held the lock"),
    "epns_probe_mode_info": (GAUGE, "What the last run did: tcp_tls, mqtt, hold or passive"),
}
MODES = ("tcp_tls", "mqtt", "hold", "passive")
# The states of _agent's summary in which the runner saw what the agent holds ("cannot_see": it did not).
AGENT_SEEN = ("connected", "not_connected", "no_agent")


class Metrics:
    """Samples by metric name, rendered in METRICS order; a family without samples is left out."""

    def __init__(self) -> None:
        self.samples: t.Dict[str, t.List[t.Tuple[t.Dict[str, str], float]]] = {name: [] for name in METRICS}

    def add(self, name: str, labels: Labels, value: float) -> None:
        if name not in METRICS:
            raise ValueError(f"metric {name!r} is not one of the documented ones")
        self.samples[name].append((dict(labels), float(value)))

    def render(self) -> str:
        lines: t.List[str] = []
        for name, (kind, text) in METRICS.items():
            if not self.samples[name]:
                continue
            lines += [f"# HELP {name} {escape_help(text)}", f"# TYPE {name} {kind}"]
            lines += [f"{name}{render_labels(labels)} {format_value(value)}" for labels, value in self.samples[name]]
        return "\n".join(lines) + "\n" if lines else ""


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{escape_label(str(value))}"' for key, value in sorted(labels.items())) + "}"


def format_value(value: float) -> str:
    return str(int(value)) if value == int(value) and abs(value) < 2 ** 53 else repr(value)


def path_labels(path: t.Mapping[str, t.Any]) -> t.Dict[str, str]:
    """{port, via, proxy} of a probe result's path; proxy is the configured proxy's host:port, never its URL."""
    proxy = path.get("proxy")
    if not proxy:
        return {"port": str(path["port"]), "via": "direct", "proxy": ""}
    parts = urlsplit(str(proxy))
    host = parts.hostname or ""
    shown = f"[{host}]" if ":" in host else host
    return {"port": str(path["port"]), "via": "proxy", "proxy": f"{shown}:{parts.port}"}


def path_key(labels: Labels) -> str:
    return f"{labels['port']} {labels['via']} {labels['proxy']}".rstrip()


def telling_attempt(path: t.Mapping[str, t.Any]) -> t.Optional[t.Mapping[str, t.Any]]:
    """The attempt whose stages the metrics show: the first that worked, else the one the path's failure is from."""
    attempts = list(path.get("attempts") or [])
    working = [a for a in attempts if a.get("ok")]
    if working:
        return working[0]
    failure = path.get("failure") or {}
    same = [a for a in attempts if (a.get("failure") or {}).get("stage") == failure.get("stage")]
    return (same or attempts or [None])[0]


def stage_seconds(attempt: t.Optional[t.Mapping[str, t.Any]]) -> t.Dict[str, float]:
    found: t.Dict[str, float] = {}
    for stage in (attempt or {}).get("stages") or []:
        if stage.get("name") in _epns.STAGES:
            found[stage["name"]] = stage.get("elapsed_ms", 0) / 1000.0
    return found


def hold_outcome(path: t.Mapping[str, t.Any]) -> t.Tuple[float, bool]:
    """(longest hold survived in seconds, whether a hold was cut while idle) over the path's attempts."""
    survived, cut = 0.0, False
    for attempt in path.get("attempts") or []:
        for stage in attempt.get("stages") or []:
            if stage.get("name") == "hold":
                survived = max(survived, stage.get("elapsed_ms", 0) / 1000.0)
        failure = attempt.get("failure") or {}
        cut = cut or (failure.get("stage") == "hold" and failure.get("class") == _epns.IDLE_DROPPED)
    return survived, cut


def issuer_digests(path: t.Mapping[str, t.Any]) -> t.List[str]:
    issuers = {(a.get("tls") or {}).get("issuer") for a in path.get("attempts") or []}
    return sorted(hashlib.sha256(i.encode("utf-8")).hexdigest() for i in issuers if i)


def intercepted(path: t.Mapping[str, t.Any]) -> bool:
    return any((a.get("failure") or {}).get("class") == _epns.TLS_INTERCEPTED for a in path.get("attempts") or [])


def run_metrics(result: t.Optional[t.Mapping[str, t.Any]], mode: str, known: t.Mapping[str, t.Mapping[str, t.Any]],
                ended: float, duration: float, skipped: int,
                agent: t.Optional[t.Mapping[str, t.Any]] = None) -> Metrics:
    """The metrics of a run: this run's paths from result (None: a passive run), the remembered per-path facts
    (last success, last hold) from known (path key -> {labels, last_success, hold_survived, idle_cut}), and the
    agent's own connection (the summary of _agent.observe; left out when the runner cannot see it)."""
    metrics = Metrics()
    if agent and agent.get("state") in AGENT_SEEN:
        connected = agent["state"] == "connected"
        labels = {"port": str(agent.get("port") or "") if connected else "",
                  "via": str(agent.get("via") or "") if connected else ""}
        metrics.add("epns_agent_connection_up", labels, 1 if connected else 0)
    for path in (result or {}).get("paths") or []:
        labels = path_labels(path)
        metrics.add("epns_path_up", labels, 1 if path.get("ok") else 0)
        failure = path.get("failure")
        if not path.get("ok") and failure:
            metrics.add("epns_path_failure", dict(labels, **{"class": str(failure.get("class")),
                                                             "stage": str(failure.get("stage"))}), 1)
        for stage, seconds in stage_seconds(telling_attempt(path)).items():
            metrics.add("epns_path_stage_seconds", dict(labels, stage=stage), seconds)
        for digest in issuer_digests(path):
            metrics.add("epns_tls_issuer_info", dict(labels, issuer_sha256=digest), 1)
        metrics.add("epns_tls_interception_suspected", labels, 1 if intercepted(path) else 0)
    for fact in known.values():
        if fact.get("last_success") is not None:
            metrics.add("epns_path_last_success_timestamp_seconds", fact["labels"], fact["last_success"])
        if fact.get("hold_survived") is not None:
            metrics.add("epns_path_hold_survived_seconds", fact["labels"], fact["hold_survived"])
            metrics.add("epns_path_idle_cut", fact["labels"], 1 if fact.get("idle_cut") else 0)
    if result is not None:
        for verdict in _epns.VERDICTS:
            metrics.add("epns_verdict", {"verdict": verdict}, 1 if result.get("verdict") == verdict else 0)
    metrics.add("epns_probe_last_run_timestamp_seconds", {}, round(ended, 3))
    metrics.add("epns_probe_run_duration_seconds", {}, round(duration, 3))
    metrics.add("epns_probe_runs_skipped_total", {}, skipped)
    for each in MODES:
        metrics.add("epns_probe_mode_info", {"mode": each}, 1 if each == mode else 0)
    return metrics


def remember(known: t.Mapping[str, t.Mapping[str, t.Any]], result: t.Optional[t.Mapping[str, t.Any]], mode: str,
             now: float) -> t.Dict[str, t.Dict[str, t.Any]]:
    """known updated with this run: a working path's last success is now; a hold run replaces the hold facts."""
    updated = {key: dict(fact) for key, fact in known.items()}
    for path in (result or {}).get("paths") or []:
        labels = path_labels(path)
        fact = updated.setdefault(path_key(labels), {"labels": labels, "last_success": None,
                                                     "hold_survived": None, "idle_cut": False})
        if path.get("ok"):
            fact["last_success"] = round(now, 3)
        if mode == "hold":
            fact["hold_survived"], fact["idle_cut"] = hold_outcome(path)
    return updated
