"""Role epns_monitor as files: its defaults and argument_specs agree, and it keeps the contract's runner options."""
from __future__ import annotations

import typing as t
from pathlib import Path

import yaml

ROLE = Path(__file__).resolve().parents[2] / "roles" / "epns_monitor"
RUNNER_OPTIONS = {"state", "user", "prefix", "config_dir", "state_dir", "textfile_dir", "interval_minutes",
                  "allow_short_interval", "jitter_seconds", "mqtt_every_minutes", "hold_every_minutes", "hold_seconds",
                  "keepalive_seconds", "history_keep", "scheduler", "probe", "active"}


def load(relative: str) -> t.Any:
    return yaml.safe_load((ROLE / relative).read_text())


def runner_tasks(relative: str) -> t.List[t.Dict[str, t.Any]]:
    return [task for task in load(relative) if "protectnet.epns.epns_monitor_runner" in task]


def test_defaults_and_argument_specs_agree() -> None:
    defaults = load("defaults/main.yml")
    options = load("meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    assert set(defaults) == set(options)
    for name, spec in options.items():
        if "default" in spec:
            assert defaults[name] == spec["default"], name
        else:
            assert defaults[name] is None, name
        assert spec.get("description"), name


def test_the_role_calls_the_runner_module_with_the_contracts_options_only() -> None:
    present, = runner_tasks("tasks/present.yml")
    absent, = runner_tasks("tasks/absent.yml")
    assert set(present["protectnet.epns.epns_monitor_runner"]) == RUNNER_OPTIONS
    assert set(absent["protectnet.epns.epns_monitor_runner"]) <= RUNNER_OPTIONS
    assert absent["protectnet.epns.epns_monitor_runner"]["state"] == "absent"


def test_the_user_has_no_login_and_absent_removes_it() -> None:
    user, = [task["ansible.builtin.user"] for task in load("tasks/present.yml") if "ansible.builtin.user" in task]
    assert user["system"] is True and user["shell"] == "/usr/sbin/nologin" and user["create_home"] is False
    assert user["home"] == "{{ epns_monitor_state_dir }}"
    removed = [task["ansible.builtin.user"] for task in load("tasks/absent.yml") if "ansible.builtin.user" in task]
    assert removed == [{"name": "{{ epns_monitor_user }}", "state": "absent"}]


def test_the_role_depends_on_host_support_like_the_others() -> None:
    assert load("meta/main.yml")["dependencies"] == [{"role": "protectnet.epns.epns_host_support"}]
