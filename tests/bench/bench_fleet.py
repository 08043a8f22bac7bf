"""`make bench` part (e): verify.yml against `ansible -m ping`, the floor of any Ansible check, on the same lab agents.

Same inventory, same agents (`--limit`), same forks, at 2, 10 and 40 agents of one lab; the runs of the two
alternate so load on the machine falls on both alike. Goal (issue 16): at most 1.15x the floor at every size.

Then a third of the agents behind faults (half of them with 8883 dropped, half with a silent broker: TLS completes,
then nothing, on both ports) at the largest size, as the median of the runs. Goal: at most the floor plus one probe
deadline (epns_verify_timeout) per round of forks plus the report's own time (verify.yml with the report minus
verify.yml without it, healthy, same size).
"""
from __future__ import annotations

import math
import statistics
import subprocess
import time
import typing as t
from pathlib import Path

from _ansible import BIN, REPO, ansible_env

SIZES = (2, 10, 40)
FORKS = 20  # the lab's ansible.cfg has 20; given on the command line to both, so they cannot differ
PROBE_DEADLINE_S = 10.0  # roles/epns_verify/defaults: epns_verify_timeout
FLOOR_GOAL = 1.15

Say = t.Callable[[str], None]


def _run(argv: t.Sequence[str], lab: t.Any, ok_codes: t.Tuple[int, ...] = (0,)) -> float:
    started = time.monotonic()
    done = subprocess.run(list(argv), env=ansible_env(lab), capture_output=True, text=True, check=False, cwd=REPO)
    elapsed = time.monotonic() - started
    if done.returncode not in ok_codes:
        raise SystemExit(f"{argv[0]} failed (rc={done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return elapsed


def _ping(lab: t.Any, hosts: t.Sequence[str]) -> t.List[str]:
    return [str(BIN / "ansible"), "agents", "-i", str(lab.inventory), "-m", "ansible.builtin.ping",
            "-f", str(FORKS), "--limit", ",".join(hosts)]


def _verify(lab: t.Any, hosts: t.Sequence[str], report_dir: Path, report: bool = True) -> t.List[str]:
    return [str(BIN / "ansible-playbook"), "-i", str(lab.inventory), str(REPO / "playbooks" / "verify.yml"),
            "-f", str(FORKS), "--limit", ",".join(hosts), "-e", "epns_targets=agents",
            "-e", f"epns_verify_report_dir={report_dir}", "-e", "epns_verify_fail_on=never",
            "-e", f"epns_verify_report={'true' if report else 'false'}"]


def _medians(lab: t.Any, runs: t.Mapping[str, t.List[str]], repeats: int) -> t.Dict[str, float]:
    """Median seconds of each command, run in turn (a, b, a, b, ...) so both see the same load."""
    samples: t.Dict[str, t.List[float]] = {name: [] for name in runs}
    for _repeat in range(repeats):
        for name, argv in runs.items():
            samples[name].append(_run(argv, lab, ok_codes=(0, 2)))
    return {name: statistics.median(values) for name, values in samples.items()}


def _healthy(lab: t.Any, sizes: t.Sequence[int], repeats: int, report_dir: Path, say: Say) -> t.Dict[str, t.Any]:
    figures: t.Dict[str, t.Any] = {}
    for size in sizes:
        hosts = list(lab.agents[:size])
        _run(_verify(lab, hosts, report_dir), lab, (0, 2))  # SSH control masters up, caches warm
        _run(_ping(lab, hosts), lab)
        got = _medians(lab, {"ping": _ping(lab, hosts), "verify": _verify(lab, hosts, report_dir)}, repeats)
        ratio = got["verify"] / got["ping"]
        figures[str(size)] = {**got, "ratio": round(ratio, 3)}
        verdict = "met" if ratio <= FLOOR_GOAL else f"NOT met, by {ratio / FLOOR_GOAL:.2f}x"
        say(f"(e) {size} agents, {FORKS} forks: ansible -m ping {got['ping']:.2f} s, verify.yml {got['verify']:.2f} s "
            f"-> {ratio:.2f}x the floor (goal <= {FLOOR_GOAL}x: {verdict}; median of {repeats})")
    return figures


def _faulted(lab: t.Any, size: int, repeats: int, report_dir: Path, say: Say) -> t.Dict[str, t.Any]:
    hosts = list(lab.agents[:size])
    no_report = _medians(lab, {"with": _verify(lab, hosts, report_dir),
                               "without": _verify(lab, hosts, report_dir, report=False)}, max(1, repeats // 2))
    report_s = max(0.0, no_report["with"] - no_report["without"])
    behind = hosts[::3]
    for i, agent in enumerate(behind):
        if i % 2:
            lab.fault(agent, "hostile", mode="silent-after-tls")
        else:
            lab.fault(agent, "block", port=8883)
    try:
        got = _medians(lab, {"ping": _ping(lab, hosts), "verify": _verify(lab, hosts, report_dir)}, repeats)
    finally:
        lab.clear_all()
    rounds = math.ceil(size / FORKS)
    bound = got["ping"] + rounds * PROBE_DEADLINE_S + report_s
    verdict = "met" if got["verify"] <= bound else f"NOT met, by {got['verify'] - bound:.2f} s"
    say(f"(e) {size} agents, {len(behind)} behind faults (8883 dropped, silent broker): "
        f"verify.yml {got['verify']:.2f} s, bound {bound:.2f} s = ping {got['ping']:.2f} s + {rounds} round(s) x "
        f"{PROBE_DEADLINE_S:.0f} s deadline + "
        f"report {report_s:.2f} s ({verdict}; median of {repeats}); verify/ping {got['verify'] / got['ping']:.2f}x")
    return {"agents": size, "behind_faults": len(behind), **got, "report_s": round(report_s, 3), "rounds": rounds,
            "bound": round(bound, 3), "met": got["verify"] <= bound}


def part_e(lab: t.Any, say: Say, report_dir: Path, repeats: int = 5,
           sizes: t.Sequence[int] = SIZES) -> t.Dict[str, t.Any]:
    """Needs a lab with at least max(sizes) agents; returns the figures for .build/bench/fleet.json."""
    sizes = [n for n in sizes if n <= len(lab.agents)]
    return {"forks": FORKS, "repeats": repeats, "probe_deadline_s": PROBE_DEADLINE_S,
            "healthy": _healthy(lab, sizes, repeats, report_dir, say),
            "faulted": _faulted(lab, sizes[-1], repeats, report_dir, say)}
