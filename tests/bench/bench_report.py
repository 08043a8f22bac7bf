"""`make bench` part (d): the report action for 1,000 and 10,000 synthetic hosts, run as a user runs it.

Each measurement is one whole `ansible-playbook` process on localhost whose play loads the synthetic results
(tests/bench/_synthetic.py) from a JSON file and either writes the report (protectnet.epns.epns_report, all four
formats) or, for the data floor, only templates the same results (`debug` of their length). Wall time and the peak
resident memory of the process tree (wait4's rusage: the largest of the process and the children it waited for,
i.e. the worker that ran the task) are taken per run; the figure is the median of the runs.

Goals (issue 16): 10x the hosts cost at most 12x the time; the report takes at most 1.5x its data floor.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
import typing as t
from pathlib import Path

import _synthetic
from _ansible import BIN, COLLECTIONS, REPO

SIZES = (1000, 10000)
TIME_RATIO_GOAL = 12.0
FLOOR_RATIO_GOAL = 1.5

# The results come in through a lookup and from_json, not vars_files: like results registered from a module they
# are data, not trusted templates (ansible-core 2.19 would otherwise template every string of them, in both plays).
PLAY = """- hosts: localhost
  gather_facts: false
  vars:
    bench_data: "{{{{ lookup('ansible.builtin.file', {data}) | from_json }}}}"
  tasks:
{task}
"""
REPORT_TASK = """    - protectnet.epns.epns_report:
        results: "{{{{ bench_data.bench_results }}}}"
        dest: {dest}
{extra}"""
FLOOR_TASK = """    - ansible.builtin.debug:
        msg: "{{ bench_data.bench_results | length }}"
"""
# What handing the same results to any task as an argument costs (ansible-core templates and finalises every value
# of an argument before the task runs): a debug skipped by its verbosity, so it neither prints nor returns them.
ARGUMENT_TASK = """    - ansible.builtin.debug:
        msg: "{{ bench_data.bench_results }}"
        verbosity: 4
"""


def _action_options() -> t.Set[str]:
    """The options the report action takes in this checkout (hosts_info arrives with part A of issue 16)."""
    source = (REPO / "plugins" / "action" / "epns_report.py").read_text()
    return {name for name in ("hosts_info", "eset_inventory") if f'"{name}":' in source}


def _env() -> t.Dict[str, str]:
    env = dict(os.environ)
    env.update({"ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS), "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
                "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
                "ANSIBLE_DEPRECATION_WARNINGS": "false", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0"})
    return env


def run_measured(argv: t.Sequence[str], env: t.Mapping[str, str], cwd: Path) -> t.Tuple[float, int, str]:
    """(wall seconds, peak RSS in KiB of the process tree, output); fails loudly when the command fails."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(list(argv), env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _pid, status, usage = os.wait4(process.pid, 0)
        elapsed = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    if process.returncode != 0:
        raise SystemExit(f"{argv[0]} failed (rc={process.returncode}):\n{text[-3000:]}")
    return elapsed, int(usage.ru_maxrss), text


def _write_play(work: Path, name: str, data: Path, task: str) -> Path:
    path = work / f"{name}.yml"
    path.write_text(PLAY.format(data=repr(str(data)), task=task))
    return path


def _plays(work: Path, hosts: int) -> t.Tuple[Path, Path, Path]:
    made = _synthetic.fleet(hosts)
    data: t.Dict[str, t.Any] = {"bench_results": made.results}
    extra = ""
    options = _action_options()
    if "hosts_info" in options:
        data["bench_hosts_info"] = made.hosts_info
        extra += '        hosts_info: "{{ bench_data.bench_hosts_info }}"\n'
    if "eset_inventory" in options:
        data["bench_eset_inventory"] = _synthetic.eset_inventory(made)
        extra += '        eset_inventory: "{{ bench_data.bench_eset_inventory }}"\n'
    data_file = work / f"results-{hosts}.json"
    data_file.write_text(json.dumps(data))
    dest = work / f"report-{hosts}"
    report = _write_play(work, f"report-{hosts}", data_file,
                         REPORT_TASK.format(dest=json.dumps(str(dest)), extra=extra))
    floor = _write_play(work, f"floor-{hosts}", data_file, FLOOR_TASK)
    argument = _write_play(work, f"argument-{hosts}", data_file, ARGUMENT_TASK)
    return report, floor, argument


def _median_run(play: Path, repeats: int, work: Path) -> t.Dict[str, float]:
    argv = [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(play)]
    samples = [run_measured(argv, _env(), work) for _ in range(repeats)]
    return {"seconds": statistics.median(s[0] for s in samples), "peak_rss_mib": max(s[1] for s in samples) / 1024}


def _verdict(ratio: float, goal: float) -> str:
    return f"goal <= {goal}x: {'met' if ratio <= goal else f'NOT met, by {ratio / goal:.2f}x'}"


def part_d(say: t.Callable[[str], None], repeats: int = 3, sizes: t.Sequence[int] = SIZES) -> t.Dict[str, t.Any]:
    """Measure, print every ratio, and return the figures for .build/bench/fleet.json."""
    figures: t.Dict[str, t.Any] = {"sizes": {}, "repeats": repeats, "options": sorted(_action_options())}
    with tempfile.TemporaryDirectory(prefix="pn-bench-report-") as tmp:
        work = Path(tmp)
        for hosts in sizes:
            report_play, floor_play, argument_play = _plays(work, hosts)
            _median_run(floor_play, 1, work)  # warm the page cache and Python's bytecode for both
            floor = _median_run(floor_play, repeats, work)
            argument = _median_run(argument_play, repeats, work)
            report = _median_run(report_play, repeats, work)
            ratio = report["seconds"] / floor["seconds"]
            own = report["seconds"] - argument["seconds"]
            figures["sizes"][str(hosts)] = {
                "report": report, "floor": floor, "argument": argument, "report_over_floor": round(ratio, 3),
                "report_over_argument": round(report["seconds"] / argument["seconds"], 3),
                "report_own_ms_per_host": round(own * 1000 / hosts, 3)}
            say(f"(d) {hosts} hosts: report {report['seconds']:.2f} s, {report['peak_rss_mib']:.0f} MiB; floor (debug "
                f"of the results' length) {floor['seconds']:.2f} s, {floor['peak_rss_mib']:.0f} MiB -> report/floor "
                f"{ratio:.2f}x ({_verdict(ratio, FLOOR_RATIO_GOAL)}; median of {repeats})")
            say(f"(d) {hosts} hosts: the same results handed to a task as an argument (debug, skipped) "
                f"{argument['seconds']:.2f} s, {argument['peak_rss_mib']:.0f} MiB -> report/argument "
                f"{report['seconds'] / argument['seconds']:.2f}x; the report's own time beyond that "
                f"{own * 1000 / hosts:.2f} ms per host")
    if len(sizes) >= 2:
        small, large = (figures["sizes"][str(n)]["report"] for n in (sizes[0], sizes[-1]))
        factor = sizes[-1] / sizes[0]
        time_ratio = large["seconds"] / small["seconds"]
        mem_ratio = large["peak_rss_mib"] / small["peak_rss_mib"]
        goal = TIME_RATIO_GOAL * factor / 10
        figures.update(time_ratio=round(time_ratio, 3), memory_ratio=round(mem_ratio, 3), hosts_ratio=factor)
        say(f"(d) {factor:.0f}x the hosts: {time_ratio:.2f}x the time ({_verdict(time_ratio, goal)}), "
            f"{mem_ratio:.2f}x the peak memory")
    return figures


if __name__ == "__main__":
    import sys

    # PYTHONPATH=tests/integration python tests/bench/bench_report.py [hosts ...]: one quick run per size
    print(json.dumps(part_d(lambda line: print(f"bench: {line}", flush=True), repeats=1,
                            sizes=[int(n) for n in sys.argv[1:]] or SIZES), indent=1))
