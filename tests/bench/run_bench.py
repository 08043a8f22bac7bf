#!/usr/bin/env python3
"""`make bench`: how the probe compares, measured in one run on this machine. Not a test and not a CI gate.

(a) verify.yml against a baseline playbook of stock modules (ansible.builtin.wait_for,
    community.crypto.get_certificate and mosquitto_pub) on the same two agents, healthy and with 8883 dropped.
(b) with 50 ms of added round-trip time, the probe's time for all its paths against the floor of one path:
    TCP + TLS 1.3 + MQTT CONNECT/CONNACK is three round trips.
(c) the ESET PROTECT inventory of 10,000 devices against the API emulator, both deployments: the API requests it
    made against the minimum (one login, the group pages and the device pages at the deployment's page limit;
    goal: equal), and a cached run's time against an uncached one's (ansible-inventory --list, whole process).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Callable, List

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests" / "lab"), str(REPO / "tests" / "integration"), str(REPO / "tests")]

from _ansible import BIN, COLLECTIONS, ansible_env  # noqa: E402
from bench_fleet import SIZES as FLEET_SIZES  # noqa: E402
from bench_fleet import part_e  # noqa: E402
from bench_inventory import part_c  # noqa: E402
from bench_report import part_d  # noqa: E402
from pnlab import Lab  # noqa: E402

BENCH_DIR = REPO / ".build" / "bench"
BASELINE_COLLECTIONS = BENCH_DIR / "collections"
RTT_MS = 50.0
REPEATS = 3


def say(line: str) -> None:
    print(f"bench: {line}", flush=True)


def ensure_community_crypto() -> None:
    """The baseline needs community.crypto; PyPI's `ansible` package carries it, so take it from there."""
    if (BASELINE_COLLECTIONS / "ansible_collections" / "community" / "crypto").is_dir():
        return
    wheels = BENCH_DIR / "wheels"
    subprocess.run([str(BIN / "pip"), "download", "-q", "--no-deps", "-d", str(wheels), "ansible>=12,<13"],
                   check=True)
    wheel = next(wheels.glob("ansible-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        members = [m for m in archive.namelist() if m.startswith("ansible_collections/community/crypto/")]
        archive.extractall(BASELINE_COLLECTIONS, members)


def timed(run: Callable[[], subprocess.CompletedProcess], repeats: int) -> float:
    samples: List[float] = []
    for _ in range(repeats):
        started = time.monotonic()
        done = run()
        samples.append(time.monotonic() - started)
        if done.returncode not in (0, 2):  # 2: some host failed, expected for the baseline with 8883 dropped
            raise SystemExit(f"playbook failed (rc={done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return statistics.median(samples)


def playbook_runner(lab: Lab, playbook: Path, extra: List[str],
                    report_dir: Path) -> Callable[[], subprocess.CompletedProcess]:
    env = ansible_env(lab, {"ANSIBLE_COLLECTIONS_PATH": f"{COLLECTIONS}:{BASELINE_COLLECTIONS}"})
    argv = [str(BIN / "ansible-playbook"), "-i", str(lab.inventory), str(playbook), "-e", "epns_targets=agents",
            "-e", f"epns_verify_report_dir={report_dir}", "-e", "epns_verify_fail_on=never", *extra]

    def run() -> subprocess.CompletedProcess:
        return subprocess.run(argv, env=env, capture_output=True, text=True, check=False, cwd=REPO)

    return run


def part_a(lab: Lab, report_dir: Path) -> None:
    probe = playbook_runner(lab, REPO / "playbooks" / "verify.yml", [], report_dir)
    baseline = playbook_runner(lab, Path(__file__).with_name("baseline.yml"), [], report_dir)
    probe()  # warm the SSH control masters and caches for both
    baseline()
    for label, repeats, expected in (("healthy", REPEATS, 2.5), ("8883 dropped on agent2", 1, 4.0)):
        if label != "healthy":
            lab.fault(lab.agents[1], "block", port=8883)
        base_s, probe_s = timed(baseline, repeats), timed(probe, repeats)
        ratio = base_s / probe_s
        say(f"(a) {label}: baseline {base_s:.2f} s, verify.yml {probe_s:.2f} s -> {ratio:.1f}x faster "
            f"(goal >= {expected}x: {'met' if ratio >= expected else 'NOT met'})")
    lab.clear_all()


PROBE_SNIPPET = """
import json, sys
from ansible_collections.protectnet.epns.plugins.module_utils._probe._engine import Probe
from ansible_collections.protectnet.epns.plugins.module_utils._probe._options import ProbeOptions, prepare
plan = prepare(ProbeOptions())
result = Probe(plan).run()
print(json.dumps({"elapsed_ms": result["elapsed_ms"], "verdict": result["verdict"],
                  "paths": {p["id"]: p["elapsed_ms"] for p in result["paths"]}}))
"""


def part_b(lab: Lab) -> None:
    agent = lab.agents[0]
    lab.fault(agent, "latency", rtt_ms=RTT_MS)
    ping = lab.run(agent, ["ping", "-c", "5", "-i", "0.2", "-n", "epns.eset.com"], timeout=20)
    rtts = [float(line.split("time=")[1].split()[0]) for line in ping.stdout.splitlines() if "time=" in line]
    rtt = statistics.median(rtts) if rtts else RTT_MS
    env = ["env", f"PYTHONPATH={COLLECTIONS}"]
    samples = []
    for _ in range(5):
        done = lab.run(agent, [*env, "/usr/bin/python3", "-c", PROBE_SNIPPET], timeout=30, check=True)
        samples.append(json.loads(done.stdout))
    lab.clear_all()
    elapsed = statistics.median(s["elapsed_ms"] for s in samples)
    floor = 3 * rtt
    paths = ", ".join(f"{k} {v} ms" for k, v in samples[-1]["paths"].items())
    say(f"(b) measured RTT {rtt:.1f} ms; floor of one path (3 RTT) {floor:.0f} ms; all paths together {elapsed:.0f} ms "
        f"(median of {len(samples)}; last run: {paths}; verdict {samples[-1]['verdict']})")
    ratio = elapsed / floor
    say(f"(b) ratio all paths / one-path floor = {ratio:.2f} (goal <= 1.25: {'met' if ratio <= 1.25 else 'NOT met'})")


def main(parts: List[str]) -> int:
    wanted = set("".join(parts) or "abcde")
    repeats = int(os.environ.get("BENCH_REPEATS", "5"))
    figures: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "load_average_before": os.getloadavg()}
    if wanted & {"a", "b"}:
        ensure_community_crypto()
        with tempfile.TemporaryDirectory(prefix="pn-bench-") as work, Lab(agents=2, progress=say) as lab:
            if "a" in wanted:
                part_a(lab, Path(work) / "report")
            if "b" in wanted:
                part_b(lab)
    if "c" in wanted:
        part_c(say)
    if "d" in wanted:
        figures["report"] = part_d(say, repeats=max(1, repeats // 2 + 1))
    if "e" in wanted:
        with tempfile.TemporaryDirectory(prefix="pn-bench-") as work, \
                Lab(agents=max(FLEET_SIZES), progress=say) as lab:
            figures["fleet"] = part_e(lab, say, Path(work) / "report", repeats=repeats)
    figures["load_average_after"] = os.getloadavg()
    if "report" in figures or "fleet" in figures:
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        (BENCH_DIR / "fleet.json").write_text(json.dumps(figures, indent=1, sort_keys=True) + "\n")
        say(f"figures written to {BENCH_DIR / 'fleet.json'} (load average before {figures['load_average_before']}, "
            f"after {figures['load_average_after']})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
