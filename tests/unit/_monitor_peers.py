"""Shared set-up of the monitor runner's unit tests: a runner configuration against loopback peers."""
from __future__ import annotations

import json
import typing as t
from pathlib import Path

from ansible_collections.protectnet.epns.plugins.module_utils._monitor import _runner
from prometheus_client.parser import text_string_to_metric_families

SNI = "epns.eset.com"


def runner_config(tmp_path: Path, pki: t.Any, primary: int, fallback: int, **top: t.Any) -> Path:
    """A monitor.json probing 127.0.0.1 on the two ports, with its state and textfile directories under tmp_path."""
    for name in ("state", "textfile"):
        (tmp_path / name).mkdir(exist_ok=True)
    data: t.Dict[str, t.Any] = {
        "probe": {"host": "127.0.0.1", "server_name": SNI, "ca_path": str(pki.ca), "primary_port": primary,
                  "fallback_port": fallback, "timeout": 4.0, "connect_timeout": 1.0},
        "state_dir": str(tmp_path / "state"), "textfile_dir": str(tmp_path / "textfile"),
        "hold_seconds": 1, "keepalive_seconds": 1, "history_keep": 500,
    }
    data.update(top)
    path = tmp_path / "monitor.json"
    path.write_text(json.dumps(data))
    return path


def samples(prom: Path) -> t.Dict[str, t.List[t.Tuple[t.Dict[str, str], float]]]:
    """name -> [(labels, value)] as the official client's parser reads the file."""
    found: t.Dict[str, t.List[t.Tuple[t.Dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(prom.read_text()):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def value(found: t.Mapping[str, t.Any], name: str, **labels: str) -> float:
    matching = [v for got, v in found[name] if all(got.get(k) == want for k, want in labels.items())]
    assert len(matching) == 1, (name, labels, found.get(name))
    return float(matching[0])


def prom_file(config: Path) -> Path:
    return Path(json.loads(config.read_text())["textfile_dir"]) / _runner.METRICS_FILE
