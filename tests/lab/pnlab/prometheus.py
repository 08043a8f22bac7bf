"""Debian's Prometheus and node_exporter inside an agent's namespaces, on request (`Lab.start_prometheus`).

node_exporter (only its textfile collector) reads the directory the monitor role writes `epns.prom` into, as the
agent sees it; Prometheus scrapes it every second with the given rule files loaded and listens on the agent's lab
address, so the tests query its HTTP API from the controller. Both run in the agent's network namespace, so `down`
kills them with everything else there; their data lives in the state dir, which `down` removes.
"""
from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .hostfs import host_dir
from .proc import LabError, alive, kill_all, spawn, wait_listening
from .topology import Host

PROMETHEUS = "/usr/bin/prometheus"
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
PROMETHEUS_PORT = 9090
NODE_EXPORTER_PORT = 9100
JOB = "node"


def _enter(holder: int) -> list[str]:
    return ["nsenter", "-t", str(holder), "-m", "-n", "-u", "--"]


def config_text(host: Host, rule_files: Sequence[Path | str], scrape_seconds: float) -> str:
    """JSON is YAML: the scrape of this agent's node_exporter, instance named after the agent."""
    config = {"global": {"scrape_interval": f"{scrape_seconds:g}s", "evaluation_interval": f"{scrape_seconds:g}s",
                         "scrape_timeout": f"{scrape_seconds:g}s"},
              "rule_files": [str(path) for path in rule_files],
              "scrape_configs": [{"job_name": JOB, "static_configs": [{
                  "targets": [f"127.0.0.1:{NODE_EXPORTER_PORT}"], "labels": {"instance": host.name}}]}]}
    return json.dumps(config, indent=2) + "\n"


@dataclass
class Monitoring:
    """A running pair; `query`, `alerts` and `wait` talk to Prometheus's HTTP API."""

    host: Host
    url: str
    prometheus_pid: int
    node_exporter_pid: int
    run_dir: Path

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=10) as response:
            body = json.load(response)
        if body.get("status") != "success":
            raise LabError(f"Prometheus {path}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant vector: [{'metric': {labels}, 'value': float}]."""
        return [{"metric": item["metric"], "value": float(item["value"][1])}
                for item in self._get("/api/v1/query", {"query": expr})["result"]]

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts: [{'labels': {...}, 'annotations': {...}, 'state': 'pending'|'firing', ...}]."""
        return list(self._get("/api/v1/alerts")["alerts"])

    def rules(self) -> list[dict[str, Any]]:
        return [rule for group in self._get("/api/v1/rules")["groups"] for rule in group["rules"]]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=5) as response:
                return bool(response.status == 200)
        except OSError:  # refused, or 503 while the TSDB opens
            return False

    def wait(self, what: str, check: Any, timeout: float = 30.0) -> Any:
        """Until check() returns something truthy (returned); LabError with the last value after timeout."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = check()
            except OSError as exc:
                last = exc
            else:
                if last:
                    return last
            time.sleep(0.5)
        raise LabError(f"Prometheus on {self.host.name}: no {what} after {timeout}s (last: {last!r}); "
                       f"log: {self.log_tail()}")

    def log_tail(self) -> str:
        logs = [self.run_dir / name for name in ("prometheus.log", "node_exporter.log")]
        return " | ".join(path.read_text(errors="replace")[-800:] for path in logs if path.exists())

    def stop(self) -> None:
        kill_all([self.prometheus_pid, self.node_exporter_pid], grace=2.0)


def start(state: Path, host: Host, holder: int, textfile_dir: str, rule_files: Sequence[Path | str] = (),
          scrape_seconds: float = 1.0) -> Monitoring:
    """node_exporter with its textfile collector on `textfile_dir` (a path as the agent sees it), then Prometheus
    scraping it; returns once both listen and the target is up."""
    run_dir = host_dir(state, host) / "prometheus"
    (run_dir / "data").mkdir(parents=True, exist_ok=True)
    config = run_dir / "prometheus.yml"
    config.write_text(config_text(host, rule_files, scrape_seconds))
    exporter = spawn([*_enter(holder), NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{NODE_EXPORTER_PORT}",
                      "--collector.disable-defaults", "--collector.textfile",
                      f"--collector.textfile.directory={textfile_dir}"], run_dir / "node_exporter.log")
    address = host.v4[0]
    prometheus = spawn([*_enter(holder), PROMETHEUS, f"--config.file={config}",
                        f"--storage.tsdb.path={run_dir / 'data'}", f"--web.listen-address={address}:{PROMETHEUS_PORT}",
                        "--web.enable-lifecycle"], run_dir / "prometheus.log")
    monitoring = Monitoring(host, f"http://{address}:{PROMETHEUS_PORT}", prometheus, exporter, run_dir)
    try:
        wait_listening(exporter, [("127.0.0.1", NODE_EXPORTER_PORT)], 30, f"node_exporter on {host.name}")
        wait_listening(prometheus, [(address, PROMETHEUS_PORT)], 60, f"Prometheus on {host.name}")
        monitoring.wait("readiness", monitoring.ready, timeout=60)
        monitoring.wait("scrape of node_exporter", lambda: [s for s in monitoring.query(f'up{{job="{JOB}"}}')
                                                           if s["value"] == 1], timeout=30)
    except BaseException:
        monitoring.stop()
        raise
    for pid, name in ((exporter, "node_exporter"), (prometheus, "Prometheus")):
        if not alive(pid):
            raise LabError(f"{name} on {host.name} exited: {monitoring.log_tail()}")
    return monitoring
