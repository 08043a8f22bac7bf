"""The two runners of _host behave alike: argv with stdin as given (no newline added), the working directory, the C
locale, and a missing program as rc 127 (never an exception, and never fail_json from inside the module's run)."""
from __future__ import annotations

import json
import sys
import typing as t
from pathlib import Path

import pytest
from ansible.module_utils import basic
from ansible_collections.protectnet.epns.plugins.module_utils._host._run import (
    CommandError,
    ModuleRunner,
    Runner,
    SubprocessRunner,
)


def module_runner(monkeypatch: pytest.MonkeyPatch) -> Runner:
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": {}}).encode())
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    return ModuleRunner(basic.AnsibleModule(argument_spec={}))


RUNNERS: t.Dict[str, t.Callable[[pytest.MonkeyPatch], Runner]] = {
    "module": module_runner,
    "subprocess": lambda monkeypatch: SubprocessRunner(),
}


@pytest.fixture(params=sorted(RUNNERS))
def runner(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Runner:
    return RUNNERS[request.param](monkeypatch)


def test_stdin_is_passed_as_given(runner: Runner) -> None:
    assert runner.run([sys.executable, "-c", "import sys; sys.stdout.write(repr(sys.stdin.read()))"],
                      data="table inet x") == (0, "'table inet x'", "")


def test_the_working_directory_and_the_c_locale(runner: Runner, tmp_path: Path) -> None:
    rc, out, _err = runner.run([sys.executable, "-c", "import os; print(os.getcwd(), os.environ['LC_ALL'])"],
                               cwd=str(tmp_path))
    assert (rc, out.split()) == (0, [str(tmp_path), "C"])


def test_a_missing_program_is_rc_127(runner: Runner, tmp_path: Path) -> None:
    rc, out, err = runner.run([str(tmp_path / "no-such-program")])
    assert rc == 127 and out == "" and "no-such-program" in err


def test_check_names_the_command_and_what_it_was_for(runner: Runner) -> None:
    assert runner.check([sys.executable, "-c", "print('ok')"]) == "ok\n"
    with pytest.raises(CommandError, match=r"^reading the ruleset: .* failed \(rc=3\): nope$"):
        runner.check([sys.executable, "-c", "import sys; sys.stderr.write('nope'); sys.exit(3)"],
                     what="reading the ruleset")
