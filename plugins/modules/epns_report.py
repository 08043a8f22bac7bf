# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Documentation only: the work is done by the action plugin plugins/action/epns_report.py on the controller.

DOCUMENTATION = r"""
module: epns_report
short_description: Write the EPNS fleet report on the controller
version_added: 0.1.0
description:
  - Turns the results of M(protectnet.epns.epns_probe) from many hosts into one report, written on the Ansible
    controller as a Markdown page, a self-contained HTML page (a matrix of hosts and paths, coloured by state),
    JSON (the full report model and the raw results) and JUnit XML (for CI dashboards).
  - A host whose result is missing, or is the result of a failed or unreachable task instead of a probe result,
    is listed as C(not probed) with the reason.
  - Several runs of the probe (for example before and after a firewall change) can go into one report, one
    section per run, with a table of what changed between the first and the last.
  - Runs on the controller only. Use it with C(run_once=true); O(dest) is a directory on the controller.
  - The report is a pure function of its input, so it can be rebuilt from the C(input) part of a saved JSON
    report (see the examples).
author:
  - protectnet.epns contributors (@protectnet)
extends_documentation_fragment:
  - protectnet.epns._attributes
attributes:
  check_mode:
    support: full
    details:
      - Writes nothing and returns in RV(changed_paths) and RV(files) the files that would change.
  diff_mode:
    support: partial
    details:
      - The diff names the files that change and their sizes, not their content.
  action:
    support: full
    description:
      Indicates this has a corresponding action plugin so some parts of the options can be executed on the
      controller.
  async:
    support: none
    description: Supports being used with the C(async) keyword.
  bypass_host_loop:
    support: none
    description: Forces a 'global' task that does not execute per host; use C(run_once=true) instead.
  platform:
    support: full
    platforms: all
    description: Target OS/families that can be operated against. The report is written on the controller.
options:
  results:
    description:
      - The probe result of each host, as a mapping of host name to the registered result of
        M(protectnet.epns.epns_probe).
      - A value that is not a probe result makes the host C(not probed), with the reason taken from its C(msg),
        for example the result of an unreachable host (C(unreachable=true)), of a failed task (C(failed=true)),
        of a skipped task, or V(null).
      - Exactly one of O(results) and O(phases) is required.
    type: dict
  phases:
    description:
      - Several runs of the probe in one report, in order, for example before and after a firewall change.
      - Each item is a mapping with C(results) (as O(results)) and an optional C(phase) label.
    type: list
    elements: dict
  phase:
    description:
      - A label for the run given in O(results), such as C(before firewall). Shown as the section title.
    type: str
  hosts:
    description:
      - Hosts that must appear in the report. A host listed here without a result is C(not probed).
      - Useful with O(results) built only from hosts that ran the probe.
    type: list
    elements: str
  dest:
    description:
      - Directory on the controller for the report files; created when missing.
      - A relative path is relative to the current working directory of C(ansible-playbook).
    type: path
    required: true
  formats:
    description:
      - Which files to write. C(markdown) writes C(<basename>.md), C(html) C(<basename>.html), C(json)
        C(<basename>.json) and C(junit) C(<basename>.junit.xml).
    type: list
    elements: str
    choices: [markdown, html, json, junit]
    default: [markdown, html, json, junit]
  basename:
    description: File name of the report files, without the extension.
    type: str
    default: epns-report
  title:
    description: Title of the report.
    type: str
    default: EPNS reachability
  generated_at:
    description:
      - The time printed in the report.
      - When not set, the current UTC time is used.
      - A file is rewritten, and the task reports a change, only when what the report says changes (hosts,
        verdicts, paths, stages, failure classes, certificates, proxy answers). Timings, ephemeral local ports,
        MQTT client ids and the time of writing are left out of that comparison (each file carries a digest of
        the rest), so running the same report over an unchanged network is idempotent, and the time in a file
        says when its content last changed.
    type: str
  show_summary:
    description:
      - Print the one-line-per-host summary and the report paths in the play output, without a separate
        C(ansible.builtin.debug) task.
    type: bool
    default: false
  return_model:
    description:
      - Return the whole report model in the task result as RV(model). Off by default, because for a fleet of
        thousands of hosts the model is megabytes that the play would then carry; the JSON report holds the same
        data.
    type: bool
    default: false
  template_dir:
    description:
      - Directory on the controller with your own templates (C(report.md.j2), C(report.html.j2),
        C(report.junit.xml.j2)); each format you ask for must have its template there. JSON has no template.
      - When not set and the task runs in a role, each template is looked up the way M(ansible.builtin.template)
        looks up a relative C(src) (the role's C(templates/) first, then the playbook's); a template not found
        there, or any template for a task outside a role, is the collection's own from
        C(roles/epns_verify/templates).
      - Templates get C(report) (the RV(model)) and, for JUnit, C(junit) (test suites derived from it). HTML and
        XML templates are autoescaped; in Markdown every expression is escaped for a table cell.
    type: path
  sections:
    description:
      - Extra sections appended to the report, for results of other steps (for example a firewall change).
      - Each item has a C(title), and any of C(text) (a paragraph), C(items) (a list of strings) and C(table)
        (a mapping with C(columns), a list of strings, and C(rows), a list of lists of strings).
    type: list
    elements: dict
  hosts_info:
    description:
      - The inventory's facts per host, for the egress groups, the ESET coverage section and the inferred lines
        (the M(protectnet.epns.epns_verify) role fills it). Each value is a mapping with any of C(eset_uuid),
        C(eset_display_name), C(eset_group_path), C(eset_public_ip), C(eset_local_ip), C(eset_os_family),
        C(eset_last_sync), C(eset_agent_proxy), C(epns_probe_supported), C(epns_host_support_skip),
        C(agent_connection) (the registered result of M(protectnet.epns.epns_agent_connection)) and C(in_play)
        (false for an ESET device that was not in the play).
      - Hosts only named here (not in the results) never become rows of the matrix; a device ESET knows that was
        not probed gets an inferred line and a coverage entry.
    type: dict
    version_added: 0.5.0
  eset_inventory:
    description:
      - The P(protectnet.epns.eset_protect#inventory) inventory's summary (its C(eset_inventory) variable). Its
        C(left_out) devices are listed as not probed, reason C(excluded). Given, or any host of O(hosts_info)
        with C(eset_uuid), and the report has a coverage section.
    type: dict
    version_added: 0.5.0
  stale_after:
    description:
      - Agents whose last replication (C(eset_last_sync)) is older than this are listed as stale, with their
        probe verdict. A number followed by C(s), C(m), C(h) or C(d).
    type: str
    default: 1d
    version_added: 0.5.0
  published_addresses:
    description:
      - A YAML file of ESET's published EPNS addresses on the controller. The report warns for each host whose
        DNS answer lies outside them (an allowlist built from the list would block that answer); a warning never
        changes a verdict.
      - Not given, the collection's dated copy of ESET's list.
    type: path
    version_added: 0.5.0
notes:
  - Every string from the probe results (certificate names, proxy answers, host names) is escaped for each format;
    characters that XML 1.0 forbids are removed from HTML and XML, and C(user:password@) in URLs is redacted.
  - Each file is written atomically (a temporary file in O(dest), then renamed).
seealso:
  - module: protectnet.epns.epns_probe
  - ref: ansible_collections.protectnet.epns.epns_verify_role
    description: The role that probes every host and calls this action.
"""

EXAMPLES = r"""
- name: Probe EPNS
  protectnet.epns.epns_probe:
    fail_on: never
  register: epns_probe_result

- name: Write the fleet report on the controller
  protectnet.epns.epns_report:
    # Hosts that failed before the probe get a placeholder, so they appear as "not probed".
    results: >-
      {{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars)
         | map(attribute='epns_probe_result', default={'unreachable': true, 'msg': 'no probe result'}))) }}
    dest: "{{ playbook_dir }}/reports"
    phase: before firewall
  delegate_to: localhost
  run_once: true
  register: report

- name: Print one line per host
  ansible.builtin.debug:
    msg: "{{ report.summary_lines }}"
  run_once: true

- name: Before and after a change, in one report
  protectnet.epns.epns_report:
    phases:
      - phase: before firewall
        results: "{{ before_results }}"
      - phase: after firewall
        results: "{{ after_results }}"
    dest: reports
    basename: epns-firewall
    formats: [html, junit]
  delegate_to: localhost
  run_once: true

- name: Rebuild a report from a saved JSON report
  protectnet.epns.epns_report:
    phases: "{{ (lookup('ansible.builtin.file', 'reports/epns-report.json') | from_json).input.phases }}"
    dest: reports/rebuilt
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
paths:
  description: The file of each format requested, whether it changed or not.
  returned: success
  type: dict
  sample: {"markdown": "/srv/reports/epns-report.md", "html": "/srv/reports/epns-report.html"}
changed_paths:
  description: The files that were written (in check mode, that would be written).
  returned: success
  type: list
  elements: str
  sample: ["/srv/reports/epns-report.html"]
files:
  description:
    - The files that were written (in check mode, that would be written), each with C(path) and C(action)
      (V(created) when the file did not exist, V(updated) when it did).
    - The same files as RV(changed_paths), in the vocabulary every module of the collection that changes something
      uses.
  returned: success
  type: list
  elements: dict
  sample: [{"path": "/srv/reports/epns-report.html", "action": "updated"}]
commands:
  description: The commands run on the controller to write the report; always empty, the files are written directly.
  returned: success
  type: list
  elements: dict
  sample: []
summary:
  description: Number of hosts per state in the last phase.
  returned: success
  type: dict
  sample: {"reachable": 3, "degraded": 1, "unreachable": 1, "not_probed": 1, "total": 6}
summary_lines:
  description:
    - One line per host of the last phase, for printing; control characters are shown as escapes.
    - With several phases the verdict reads C(first -> last).
  returned: success
  type: list
  elements: str
  sample:
    - "agent1: reachable - 8883 direct works"
    - "agent2: degraded - only 443 via http://proxy.lab:3128 works (failing: 8883 direct: tcp_timeout at tcp)"
    - "agent3: not probed - host unreachable: Failed to connect to the host via ssh"
model:
  description:
    - The report model the templates render (C(schema_version) 2, documented in docs/report-schema.md).
    - C(phases) is a list of C(phase), C(title), C(columns) (C(id), C(port), C(role), C(proxy)), C(rows) (per host
      C(host), C(state), C(verdict_reason), C(working_fallback), C(dns) and C(cells), one per column, with C(state),
      C(tone), C(text), C(failure_class), C(stage), C(message), C(hint), C(elapsed_ms), C(address_notes),
      C(proxy_status), C(tls_issuer)), C(totals), C(column_totals) and C(failure_classes).
    - C(comparison) (with several phases), C(sections), C(summary), C(summary_lines) and C(legend) complete it.
    - "Server paths (schema_version 1, added fields) - results with C(server_paths) (epns_probe with
      O(protectnet.epns.epns_probe#module:eset_server)) add their columns after the EPNS columns, marked
      C(server=true) (C(role) C(server), ids such as C(2222 server direct)); a row carries C(server_verdict) and
      C(server_verdict_reason) (null without a server path), C(problems) entries a C(server) flag, and a phase
      C(server_columns), their count. The row C(state) stays the EPNS verdict; JUnit has one case per host and
      server path as for EPNS paths."
    - "Fleet parts (schema_version 2) - C(causes) (failing paths grouped by failure class, stage and column, with
      C(fix), C(hosts), C(would_reach) and C(host_names)), C(egress) (hosts by public address, local prefix,
      gateway, proxy and ESET group), C(coverage) (null without ESET data), C(inferred) (lines for hosts that were
      not probed, never verdicts), C(warnings), C(published); each row gains C(egress) and C(agent_connection), and
      C(comparison) gains C(causes) (hosts per cause before and after)."
  returned: when O(return_model=true)
  type: dict
"""
