#!/usr/bin/python
# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: epns_monitor_runner
short_description: Install the standalone EPNS probe runner (epns-probe) with its schedule, metrics and history
version_added: 0.1.0
description:
  - Installs on the managed host a copy of the probe that M(protectnet.epns.epns_probe) runs (the same code, copied
    with its module_utils, Python standard library only) as the command C(<prefix>/bin/epns-probe), its
    configuration C(<config_dir>/monitor.json), and a schedule - a systemd service and timer where the host runs
    systemd, a C(/etc/cron.d/protectnet_epns_monitor) entry otherwise.
  - "Each scheduled run (C(epns-probe --once)) takes a lock (a run that would overlap is skipped and counted in
    C(epns_probe_runs_skipped_total)), decides what to do - V(tcp_tls) (TCP and TLS only), V(mqtt) (the full MQTT
    CONNECT, at most once per O(mqtt_every_minutes)) or V(hold) (MQTT CONNECT, then the connection held idle for
    O(hold_seconds), at most once per O(hold_every_minutes)), or V(passive) with O(active=false) - and writes the
    Prometheus text file C(<textfile_dir>/epns.prom) atomically for node_exporter's textfile collector, and one JSON
    line to C(<state_dir>/history.jsonl) (the newest O(history_keep) lines are kept)."
  - "The runner runs as O(user) (which must exist: the role C(protectnet.epns.epns_monitor) creates it); the module
    only hands it the state directory and checks that it can create files in O(textfile_dir). The systemd service
    has C(User=), C(NoNewPrivileges=yes), C(ProtectSystem=strict), C(ProtectHome=yes), C(PrivateTmp=yes) and
    C(ReadWritePaths=) of O(state_dir) and O(textfile_dir) only."
  - "MQTT sessions use random client ids with the probe's prefix C(pnprobe-), never an agent's (a broker ends the
    older of two sessions with one id), so the probe cannot take over an agent's session."
  - "V(absent) removes exactly what the install made (listed in C(<config_dir>/monitor-installed.json)) and what the
    runner wrote (its state files, history and C(epns.prom)), and the directories the install created."
author:
  - protectnet.epns contributors (@protectnet)
extends_documentation_fragment:
  - protectnet.epns._attributes
  - protectnet.epns._attributes.ACTIONGROUP_EPNS
  - protectnet.epns._result
attributes:
  check_mode:
    support: full
    details:
      - Check mode computes the same files, directories and commands as a real run and changes nothing.
  diff_mode:
    support: full
    details:
      - Shows every file it writes or removes (the copied code as its size) and every directory it creates.
  action_group:
    support: full
options:
  state:
    description: V(present) installs or updates the runner; V(absent) removes everything it installed.
    type: str
    choices: [present, absent]
    default: present
  user:
    description:
      - The system user the runner runs as. It must exist; the module does not create it.
      - Give the same path options to V(absent) as to V(present) when they were changed.
    type: str
    default: epns-monitor
  prefix:
    description: Where the command (C(bin/epns-probe)) and the copied code (C(lib/protectnet_epns/)) go.
    type: path
    default: /opt/protectnet-epns
  config_dir:
    description: Where C(monitor.json) (mode 0640, group O(user)) and the install's manifest go.
    type: path
    default: /etc/protectnet-epns
  state_dir:
    description:
      - The runner's own directory (owned by O(user), mode 0750) - the lock, the schedule state, the skip counter
        and C(history.jsonl).
    type: path
    default: /var/lib/protectnet-epns
  textfile_dir:
    description:
      - The directory node_exporter's textfile collector reads (C(--collector.textfile.directory)); Debian's
        default. The runner writes C(epns.prom) there (a temporary file in the same directory, then a rename; mode
        0644, owned by O(user)). O(user) must be able to create files in it; a missing directory is created for it.
    type: path
    default: /var/lib/prometheus/node-exporter
  interval_minutes:
    description:
      - Minutes between two runs - a divisor of 60 or whole hours dividing a day, at least 15 unless
        O(allow_short_interval=true).
    type: int
    default: 15
  allow_short_interval:
    description: Allow O(interval_minutes) under 15, O(mqtt_every_minutes) under 60 and O(hold_every_minutes) under
      1440 (a lab, a single host). Thousands of hosts at such rates would look like an attack on ESET's service.
    type: bool
    default: false
  jitter_seconds:
    description:
      - A random delay of 0 to this many seconds before each run (systemd C(RandomizedDelaySec=); cron - the
        runner waits itself), so a fleet does not connect in the same second.
    type: int
    default: 300
  mqtt_every_minutes:
    description: The full MQTT CONNECT runs at most this often; the runs in between check TCP and TLS only.
    type: int
    default: 60
  hold_every_minutes:
    description: The long hold runs at most this often (the first run on a host holds).
    type: int
    default: 1440
  hold_seconds:
    description:
      - How long a hold keeps each connection idle to catch an idle cut (0 - never hold). At most 3000.
    type: int
    default: 900
  keepalive_seconds:
    description:
      - The MQTT keepalive ping interval while holding. 60 seconds is what an MQTT client like ESET's agent
        plausibly uses; an idle timeout shorter than the ping interval cuts the hold, a longer one is kept open by
        the pings as it is for the agent. Raise it to find idle timeouts between 60 seconds and O(hold_seconds).
    type: int
    default: 60
  history_keep:
    description: How many JSON lines C(history.jsonl) keeps (the newest).
    type: int
    default: 500
  scheduler:
    description: V(auto) - systemd where the host runs it (C(/run/systemd/system)), cron otherwise.
    type: str
    choices: [auto, systemd, cron]
    default: auto
  probe:
    description:
      - Options of M(protectnet.epns.epns_probe) for the runs - C(host), C(server_name), C(primary_port),
        C(fallback_port), C(direct), C(proxies), C(address_family), C(timeout), C(connect_timeout), C(ca_path),
        C(validate_certs), C(expected_issuer), C(inspection_issuers), C(client_cert), C(client_key),
        C(dns_sinkhole_addresses), C(eset_server), C(eset_server_port), C(eset_server_ca_path).
      - C(hold_seconds), C(ping_interval) and C(mqtt_client_id) are not accepted - the schedule sets the first two,
        and the client id is always a random one.
    type: dict
    default: {}
  active:
    description:
      - V(false) - passive only, no probe traffic - the runs only look at the ESET agent's own connection
        (C(epns_agent_connection_up), as M(protectnet.epns.epns_agent_connection) does) and write the run metrics.
      - Every run, active or not, also does that passive check.
    type: bool
    default: true
notes:
  - The lab of the collection has no systemd as PID 1 - its tests check the unit and timer with
    C(systemd-analyze verify) and run the cron path for real.
  - Runs the Python standard library on the managed host.
seealso:
  - module: protectnet.epns.epns_probe
  - name: docs/monitoring.md
    description: The metrics table and the command line.
    link: https://github.com/protectnet/epns/blob/main/docs/monitoring.md
"""

EXAMPLES = r"""
- name: Install the runner on a sentinel host, probing through its proxy as well
  protectnet.epns.epns_monitor_runner:
    probe:
      proxies: [http://bridge.example.com:3128]

- name: Remove it
  protectnet.epns.epns_monitor_runner:
    state: absent
"""

RETURN = r"""
before:
  description:
    - C(installed) (bool), C(scheduler) (V(systemd), V(cron) or null), C(files) and C(dirs) the install owns.
  returned: always
  type: dict
  sample: {"installed": false, "scheduler": null, "files": [], "dirs": []}
after:
  description: The same after the run (as it would be, in check mode).
  returned: always
  type: dict
scheduler:
  description: How the runs are scheduled (V(systemd) or V(cron)); null for O(state=absent).
  returned: always
  type: str
  sample: systemd
command:
  description: The runner's command on the host.
  returned: always
  type: str
  sample: /opt/protectnet-epns/bin/epns-probe
"""

import sys  # noqa: E402
import typing as t  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._python_floor import require_supported_python  # noqa: E402

require_supported_python()  # first: the imports below need Python 3.8 and would fail on 3.6 without saying why
from ansible_collections.protectnet.epns.plugins.module_utils._host._run import CommandError, ModuleRunner  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._monitor import (  # noqa: E402
    _install,
    _layout,
    _runner,
    _schedule,
)
from ansible_collections.protectnet.epns.plugins.module_utils._probe._options import (  # noqa: E402
    ProbeConfigError,
    prepare,
)
from ansible_collections.protectnet.epns.plugins.module_utils._result import change_result, exit_changed  # noqa: E402

MAX_HOLD_SECONDS = 3000


def argument_spec() -> t.Dict[str, t.Any]:
    return dict(
        state=dict(type="str", choices=["present", "absent"], default="present"),
        user=dict(type="str", default="epns-monitor"),
        prefix=dict(type="path", default="/opt/protectnet-epns"),
        config_dir=dict(type="path", default="/etc/protectnet-epns"),
        state_dir=dict(type="path", default="/var/lib/protectnet-epns"),
        textfile_dir=dict(type="path", default="/var/lib/prometheus/node-exporter"),
        interval_minutes=dict(type="int", default=15),
        allow_short_interval=dict(type="bool", default=False),
        jitter_seconds=dict(type="int", default=300),
        mqtt_every_minutes=dict(type="int", default=60),
        hold_every_minutes=dict(type="int", default=1440),
        hold_seconds=dict(type="int", default=900),
        keepalive_seconds=dict(type="int", default=60),
        history_keep=dict(type="int", default=500),
        scheduler=dict(type="str", choices=["auto", "systemd", "cron"], default="auto"),
        probe=dict(type="dict", default={}),
        active=dict(type="bool", default=True),
    )


def check_schedule(p: t.Mapping[str, t.Any]) -> None:
    short = p["allow_short_interval"]
    for name, floor in (("mqtt_every_minutes", 60), ("hold_every_minutes", 1440)):
        if p[name] < 1 or (p[name] < floor and not short):
            raise _install.InstallError(f"{name}: {p[name]} is under {floor} minutes (accepted: {floor} or more; "
                                        "less only with allow_short_interval: true)")
    if not 0 <= p["hold_seconds"] <= MAX_HOLD_SECONDS:
        raise _install.InstallError(f"hold_seconds: {p['hold_seconds']} is out of range; accepted: 0 (no hold) to "
                                    f"{MAX_HOLD_SECONDS}")
    if p["hold_seconds"] and not 1 <= p["keepalive_seconds"] <= p["hold_seconds"]:
        raise _install.InstallError(f"keepalive_seconds: {p['keepalive_seconds']} is out of range; accepted: 1 to "
                                    f"hold_seconds ({p['hold_seconds']})")
    for name, floor in (("jitter_seconds", 0), ("history_keep", 1)):
        if p[name] < floor:
            raise _install.InstallError(f"{name}: {p[name]} is out of range; accepted: {floor} or more")


def runner_config(p: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    """monitor.json, checked the way the runner reads it (and the probe options the way the probe does)."""
    config = {name: p[name] for name in ("active", "mqtt_every_minutes", "hold_every_minutes", "hold_seconds",
                                         "keepalive_seconds", "history_keep", "state_dir", "textfile_dir")}
    config["probe"] = {k: v for k, v in (p["probe"] or {}).items() if v is not None}
    parsed = _runner.parse_config(config, "probe")
    prepare(_schedule.options_for("hold" if p["hold_seconds"] else "mqtt", parsed.probe, parsed.schedule))
    return config


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    settings = _install.Settings(user=p["user"], prefix=p["prefix"], config_dir=p["config_dir"],
                                 state_dir=p["state_dir"], textfile_dir=p["textfile_dir"],
                                 interval_minutes=p["interval_minutes"], jitter_seconds=p["jitter_seconds"],
                                 scheduler=p["scheduler"], python=sys.executable, hold_seconds=p["hold_seconds"])
    before = _layout.installed_state(settings)
    try:
        if p["state"] == "present":
            minutes = _install.check_interval(p["interval_minutes"], p["allow_short_interval"])
            check_schedule(p)
            settings.config = runner_config(p)
            plan = _layout.plan_present(settings, minutes)
        else:
            plan = _layout.plan_absent(settings)
        if not module.check_mode:
            _layout.apply(plan, ModuleRunner(module))
    except (_install.InstallError, _runner.UsageError, ProbeConfigError, CommandError, OSError, TypeError) as exc:
        module.fail_json(msg=str(exc), changed=False)
    after = _layout.expected_state(plan, before, p["state"] == "present")
    commands = [c.as_dict() for c in plan.before + plan.after]
    exit_changed(module, change_result(plan.changed, before, after, commands, _layout.file_entries(plan),
                                       diff=_layout.file_diffs(plan), scheduler=plan.scheduler,
                                       command=settings.entry))


if __name__ == "__main__":
    main()
