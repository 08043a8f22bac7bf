"""`run_module`: a module's main() as Ansible runs it (options in, one JSON document out), for the unit tests.

Registered as a fixture by conftest.py; test files use the fixture, not this module.
"""
from __future__ import annotations

import json
import socket
import subprocess
import typing as t

import pytest
from ansible.module_utils import basic


class ModuleRun:
    """Call it with (module, args, check=..., diff=...) to run module.main() once; returns the parsed result.

    `warnings` holds the last run's module.warn() messages (the controller's Display may swallow them in-process),
    `outputs` everything every run printed (stdout and stderr). `diff` is what a run that does not say gets as
    --diff. A secret given to never_prints() fails the test if any run printed it.
    """

    def __init__(self, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
        self.capsys = capsys
        self.monkeypatch = monkeypatch
        self.diff = False
        self.outputs: t.List[str] = []
        self.warnings: t.List[str] = []
        self.secrets: t.List[str] = []
        original = basic.AnsibleModule.warn

        def warn(module: t.Any, msg: str) -> None:
            self.warnings.append(msg)
            original(module, msg)

        monkeypatch.setattr(basic.AnsibleModule, "warn", warn)

    def __call__(self, module: t.Any, args: t.Mapping[str, t.Any], check: bool = False,
                 diff: t.Optional[bool] = None) -> t.Dict[str, t.Any]:
        payload = {"_ansible_check_mode": check, "_ansible_diff": self.diff if diff is None else diff, **args}
        self.monkeypatch.setattr(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": payload}).encode())
        self.monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
        self.warnings.clear()
        with pytest.raises(SystemExit):
            module.main()
        captured = self.capsys.readouterr()
        self.outputs += [captured.out, captured.err]
        return t.cast(t.Dict[str, t.Any], json.loads(captured.out))

    def never_prints(self, secret: str) -> None:
        self.secrets.append(secret)

    def refuse_commands(self) -> None:
        """From now on a command, a subprocess or a sent datagram fails the test: for bad input, nothing may run."""
        def refuse(*a: t.Any, **k: t.Any) -> t.NoReturn:
            pytest.fail(f"nothing may run for bad input: {a} {k}")

        self.monkeypatch.setattr(basic.AnsibleModule, "run_command", refuse)
        self.monkeypatch.setattr(subprocess, "run", refuse)
        self.monkeypatch.setattr(socket.socket, "sendto", refuse)


@pytest.fixture
def run_module(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> t.Iterator[ModuleRun]:
    running = ModuleRun(capsys, monkeypatch)
    yield running
    everything = "\n".join(running.outputs)
    assert not [s for s in running.secrets if s in everything], "a run printed a secret"
