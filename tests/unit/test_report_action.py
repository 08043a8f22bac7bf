"""The epns_report action plugin, driven through real ansible-playbook runs on the controller (no lab, no root)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from _report_fixtures import FIXTURES

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / ".build" / "collections"
FILES = ["epns-report.md", "epns-report.html", "epns-report.json", "epns-report.junit.xml"]

pytestmark = pytest.mark.slow


def _ansible_playbook() -> str:
    beside = Path(sys.executable).parent / "ansible-playbook"
    found = str(beside) if beside.exists() else shutil.which("ansible-playbook")
    if not found:
        pytest.skip("ansible-playbook is not installed")
    return found


# agent1..3 run "locally"; agent9 is an SSH host on a closed port, so it is unreachable before the probe.
INVENTORY = """\
[fleet]
agent1 fixture=healthy ansible_connection=local
agent2 fixture=degraded ansible_connection=local
agent3 fixture=broken ansible_connection=local
agent9 ansible_connection=ssh ansible_host=127.0.0.1 ansible_port=9 ansible_ssh_timeout=3

[fleet:vars]
ansible_python_interpreter={python}
"""

# The probe module belongs to another part of the collection: its results come from fixtures here, registered
# under the role's variable name, and the report task is the role's own expression.
FLEET_PLAYBOOK = """\
- name: Fleet
  hosts: fleet
  gather_facts: false
  tasks:
    - name: Stand-in for the probe (connects, so agent9 becomes unreachable here)
      ansible.builtin.ping:

    - name: A probe that fails without a result
      ansible.builtin.command: /nonexistent/epns-probe
      register: epns_verify_result
      ignore_errors: true
      when: fixture == 'broken'

    - name: Stand-in probe result
      ansible.builtin.set_fact:
        epns_verify_result: "{{{{ lookup('ansible.builtin.file', '{fixtures}/' ~ fixture ~ '.json') | from_json }}}}"
      when: fixture != 'broken'  # after the command: a skipped task registers too

    - name: Write the fleet report on the controller
      protectnet.epns.epns_report:
        results: >-
          {{{{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars)
             | map(attribute='epns_verify_result',
                   default={{'unreachable': true, 'msg': 'no probe result: the host failed before the probe'}}))) }}}}
        dest: "{{{{ out }}}}"
        title: Fleet
        phase: before firewall
        return_model: "{{{{ return_model | default(false) }}}}"
      delegate_to: localhost
      run_once: true
      register: report

    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{{{ report | to_json }}}}"
        dest: "{{{{ result_file }}}}"
        mode: "0644"
      delegate_to: localhost
      run_once: true
      check_mode: false
"""

MISC_PLAYBOOK = """\
- name: Misc
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    healthy: "{{{{ lookup('ansible.builtin.file', '{fixtures}/healthy.json') | from_json }}}}"
    unreachable: "{{{{ lookup('ansible.builtin.file', '{fixtures}/unreachable.json') | from_json }}}}"
  tasks:
    - name: Unknown format
      protectnet.epns.epns_report:
        results: {{a: "{{{{ healthy }}}}"}}
        dest: "{{{{ out }}}}/bad"
        formats: [html, pdf]
      register: bad_format
      ignore_errors: true

    - name: Both results and phases
      protectnet.epns.epns_report:
        results: {{}}
        phases: []
        dest: "{{{{ out }}}}/bad"
      register: bad_both
      ignore_errors: true

    - name: A broken section
      protectnet.epns.epns_report:
        results: {{a: "{{{{ healthy }}}}"}}
        sections: [{{text: no title}}]
        dest: "{{{{ out }}}}/bad"
      register: bad_section
      ignore_errors: true

    - name: Before and after
      protectnet.epns.epns_report:
        phases:
          - phase: before
            results: {{a: "{{{{ unreachable }}}}", b: "{{{{ healthy }}}}"}}
          - phase: after
            results: {{a: "{{{{ healthy }}}}", b: "{{{{ healthy }}}}"}}
        dest: "{{{{ out }}}}/phases"
        basename: fw
        formats: [junit, markdown, junit]
        sections:
          - title: Firewall
            items: ["allowed 8883/tcp to epns.eset.com"]
      register: phases

    - name: A fixed old time
      protectnet.epns.epns_report:
        results: {{a: "{{{{ healthy }}}}"}}
        dest: "{{{{ out }}}}/time"
        generated_at: "2000-01-01T00:00:00Z"
      register: time_fixed

    - name: The same report at another time is not a change
      protectnet.epns.epns_report:
        results: {{a: "{{{{ healthy }}}}"}}
        dest: "{{{{ out }}}}/time"
      register: time_now

    - name: The administrator made the report group-readable and executable by its owner
      ansible.builtin.file:
        path: "{{{{ out }}}}/time/epns-report.json"
        mode: "0750"

    - name: Another title over an existing file is an update
      protectnet.epns.epns_report:
        results: {{a: "{{{{ healthy }}}}"}}
        dest: "{{{{ out }}}}/time"
        formats: [json]
        title: Retitled
      register: retitled

    - name: Own templates
      protectnet.epns.epns_report:
        results: {{a: "{{{{ healthy }}}}"}}
        dest: "{{{{ out }}}}/own"
        formats: [markdown]
        template_dir: "{{{{ out }}}}/templates"
      register: own

    - name: Own templates without the one needed
      protectnet.epns.epns_report:
        results: {{a: "{{{{ healthy }}}}"}}
        dest: "{{{{ out }}}}/own"
        formats: [html]
        template_dir: "{{{{ out }}}}/templates"
      register: own_missing
      ignore_errors: true

    - name: A broken own template
      protectnet.epns.epns_report:
        results: {{a: "{{{{ healthy }}}}"}}
        dest: "{{{{ out }}}}/broken"
        formats: [markdown]
        template_dir: "{{{{ out }}}}/broken-templates"
      register: broken_template
      ignore_errors: true

    - name: A destination under a regular file
      protectnet.epns.epns_report:
        results: {{a: "{{{{ healthy }}}}"}}
        dest: "{{{{ out }}}}/templates/report.md.j2/under"
        formats: [markdown]
      register: unwritable
      ignore_errors: true

    - name: Keep the results for the test
      ansible.builtin.copy:
        content: "{{{{ {{'bad_format': bad_format, 'bad_both': bad_both, 'bad_section': bad_section,
                     'phases': phases, 'time_fixed': time_fixed, 'time_now': time_now, 'retitled': retitled,
                     'own': own, 'own_missing': own_missing, 'broken_template': broken_template,
                     'unwritable': unwritable}} | to_json }}}}"
        dest: "{{{{ result_file }}}}"
        mode: "0644"
      check_mode: false
"""


def _run(workdir: Path, playbook: str, *args: str, **extra_vars: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
        ANSIBLE_HOST_KEY_CHECKING="false",
        ANSIBLE_RETRY_FILES_ENABLED="false",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCAL_TEMP=str(workdir / ".ansible-tmp"),
        ANSIBLE_HOME=str(workdir / ".ansible"),
        ANSIBLE_DEPRECATION_WARNINGS="false",
    )
    cmd = [_ansible_playbook(), "-i", str(workdir / "inventory"), str(workdir / playbook), *args]
    cmd += ["-e", json.dumps(extra_vars)]
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=180, check=False)
    return proc


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "inventory").write_text(INVENTORY.format(python=sys.executable))
    (tmp_path / "fleet.yml").write_text(FLEET_PLAYBOOK.format(fixtures=FIXTURES))
    (tmp_path / "misc.yml").write_text(MISC_PLAYBOOK.format(fixtures=FIXTURES))
    return tmp_path


def test_fleet_report_check_mode_then_write_then_idempotent(workdir: Path):
    out = workdir / "reports"
    result_file = workdir / "result.json"

    # Check mode: nothing is written, the files that would be are listed, --diff names them.
    proc = _run(workdir, "fleet.yml", "--check", "--diff", out=str(out), result_file=str(result_file))
    assert proc.returncode == 4, proc.stdout + proc.stderr  # 4: agent9 is unreachable
    assert not out.exists()
    checked = json.loads(result_file.read_text())
    assert checked["changed"] is True
    assert [Path(p).name for p in checked["changed_paths"]] == FILES
    assert checked["files"] == [{"path": str(out / name), "action": "created"} for name in FILES]
    assert checked["commands"] == []
    assert f"+{out}/epns-report.html: " in proc.stdout and f"-{out}/epns-report.html: absent" in proc.stdout
    assert checked["summary"]["not_probed"] == 2  # agent3's command is skipped in check mode; agent9 unreachable

    # A real run writes the four files.
    proc = _run(workdir, "fleet.yml", out=str(out), result_file=str(result_file))
    assert proc.returncode == 4, proc.stdout + proc.stderr
    first = json.loads(result_file.read_text())
    assert first["changed"] is True
    assert first["files"] == [{"path": str(out / name), "action": "created"} for name in FILES]
    assert sorted(os.listdir(out)) == sorted(FILES)  # no temporary files left behind
    assert first["paths"] == {
        "markdown": str(out / "epns-report.md"),
        "html": str(out / "epns-report.html"),
        "json": str(out / "epns-report.json"),
        "junit": str(out / "epns-report.junit.xml"),
    }
    assert first["summary"] == {"reachable": 1, "degraded": 1, "unreachable": 0, "not_probed": 2, "total": 4}
    lines = first["summary_lines"]
    assert lines[0] == "agent1: reachable - 8883 direct works"
    assert lines[1].startswith("agent2: degraded - only 443 via http://proxy.lab:3128 works (failing: ")
    assert lines[2].startswith("agent3: not probed - probe failed: ")
    assert lines[3] == "agent9: not probed - host unreachable: no probe result: the host failed before the probe"
    # the model stays out of the task result unless asked for: at fleet scale it is megabytes on every run
    assert "model" not in first and "model" not in checked
    _run(workdir, "fleet.yml", out=str(out), result_file=str(result_file), return_model="true")
    asked = json.loads(result_file.read_text())
    assert asked["model"]["generated_at"].endswith("Z") and asked["changed"] is False  # the files say the same
    assert asked["model"]["phases"][0]["phase"] == "before firewall"

    # The files are what they claim to be.
    doc = json.loads((out / "epns-report.json").read_text())
    assert doc["report"]["summary"] == first["summary"]
    assert doc["report"]["generated_at"] <= asked["model"]["generated_at"]
    root = ET.parse(out / "epns-report.junit.xml").getroot()
    assert int(root.get("tests")) == len(list(root.iter("testcase"))) == 4 + 2 + 4
    HTMLParser().feed((out / "epns-report.html").read_text())
    assert "| agent2 | degraded |" in (out / "epns-report.md").read_text()
    mtimes = {name: (out / name).stat().st_mtime_ns for name in FILES}

    # Again: same content at a later time is not a change, and the files are not touched.
    proc = _run(workdir, "fleet.yml", out=str(out), result_file=str(result_file))
    assert proc.returncode == 4, proc.stdout + proc.stderr
    second = json.loads(result_file.read_text())
    assert second["changed"] is False
    assert second["changed_paths"] == []
    assert second["files"] == []
    assert second["commands"] == []
    assert {name: (out / name).stat().st_mtime_ns for name in FILES} == mtimes
    report_task = proc.stdout.split("TASK [Write the fleet report on the controller]")[1].split("TASK [")[0]
    assert "ok: [agent1 -> localhost]" in report_task


def test_options_errors_phases_time_and_templates(workdir: Path):
    out = workdir / "out"
    (out / "templates").mkdir(parents=True)
    (out / "templates" / "report.md.j2").write_text("custom {{ report.title }} {{ report.summary.total }}\n")
    (out / "broken-templates").mkdir()
    (out / "broken-templates" / "report.md.j2").write_text("{{ report.no_such_key }}\n")
    result_file = workdir / "misc.json"
    proc = _run(workdir, "misc.yml", out=str(out), result_file=str(result_file))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = json.loads(result_file.read_text())

    assert r["bad_format"]["failed"] is True
    assert "pdf" in r["bad_format"]["msg"] and "markdown, html, json, junit" in r["bad_format"]["msg"]
    assert r["bad_both"]["failed"] is True and "mutually exclusive" in r["bad_both"]["msg"]
    assert r["bad_section"]["failed"] is True
    assert r["bad_section"]["msg"] == "invalid report input: sections[0] must be a mapping with a title"
    assert not (out / "bad").exists()

    phases = r["phases"]
    assert sorted(phases["paths"]) == ["junit", "markdown"]
    assert sorted(os.listdir(out / "phases")) == ["fw.junit.xml", "fw.md"]
    assert phases["summary_lines"] == [
        "a: unreachable -> reachable - 8883 direct works",
        "b: reachable -> reachable - 8883 direct works",
    ]
    root = ET.parse(out / "phases" / "fw.junit.xml").getroot()
    assert [s.get("name") for s in root.findall("testsuite")] == [
        "EPNS reachability: before",
        "EPNS reachability: after",
    ]
    md = (out / "phases" / "fw.md").read_text()
    assert "## Changes between phases" in md and "## Firewall" in md and "- allowed 8883/tcp to epns.eset.com" in md

    assert r["time_fixed"]["changed"] is True
    assert r["time_now"]["changed"] is False  # only the time differs
    assert r["time_now"]["files"] == []
    assert r["retitled"]["changed"] is True
    assert r["retitled"]["files"] == [{"path": str(out / "time" / "epns-report.json"), "action": "updated"}]
    assert r["retitled"]["changed_paths"] == [str(out / "time" / "epns-report.json")]
    assert oct((out / "time" / "epns-report.json").stat().st_mode & 0o7777) == "0o750"  # a rewrite keeps the mode
    assert "Generated 2000-01-01T00:00:00Z." in (out / "time" / "epns-report.md").read_text()

    assert r["own"]["changed"] is True
    own = (out / "own" / "epns-report.md").read_text()
    assert own.startswith("custom EPNS reachability 1\n<!-- epns-report-digest")
    assert r["own_missing"]["failed"] is True
    assert "has no report.html.j2" in r["own_missing"]["msg"]

    # Every format is rendered before any file is written: a broken template leaves nothing behind.
    assert r["broken_template"]["failed"] is True
    assert r["broken_template"]["msg"].startswith("cannot render the markdown report: ")
    assert "no_such_key" in r["broken_template"]["msg"]
    assert not (out / "broken").exists()
    under = out / "templates" / "report.md.j2" / "under"
    assert r["unwritable"]["failed"] is True
    assert r["unwritable"]["msg"].startswith(f"cannot read {under}/epns-report.md: ")


def test_role_templates_override_the_collections(workdir: Path):
    """A task inside a role uses that role's templates/ when it has the file (via _find_needle)."""
    role = workdir / "roles" / "myreport"
    (role / "tasks").mkdir(parents=True)
    (role / "templates").mkdir()
    (role / "templates" / "report.md.j2").write_text("role template {{ report.summary.total }}\n")
    (role / "tasks" / "main.yml").write_text(
        textwrap.dedent(
            f"""\
            - protectnet.epns.epns_report:
                results: {{a: null}}
                dest: {workdir}/r
                formats: [markdown, junit]
            """
        )
    )
    (workdir / "role.yml").write_text(
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n  roles: [myreport]\n"
    )
    proc = _run(workdir, "role.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (workdir / "r" / "epns-report.md").read_text().startswith("role template 1\n<!-- epns-report-digest")
    assert (workdir / "r" / "epns-report.junit.xml").read_text().startswith("<?xml")  # the collection's
