"""The shared fake runner is strict: a command a test did not declare fails that test, also when the code under
test catches every Exception around the call."""
from __future__ import annotations

import pytest
from _fake_runner import OK, FakeRunner


def test_a_declared_command_answers_and_every_call_is_recorded() -> None:
    runner = FakeRunner({("nft", "-f", "-"): OK, ("nft", "-j", "list", "ruleset"): (0, "{}", "")})
    assert runner.run(["/usr/sbin/nft", "-f", "-"], "flush ruleset\n") == OK
    assert runner.run(["nft", "-j", "list", "ruleset"]) == (0, "{}", "")
    assert runner.calls == [(("nft", "-f", "-"), "flush ruleset\n"), (("nft", "-j", "list", "ruleset"), None)]
    assert runner.which("nft") == "/usr/sbin/nft" and runner.which("ufw") is None


def test_an_unexpected_command_fails_the_test_even_behind_except_exception() -> None:
    runner = FakeRunner({})
    with pytest.raises(pytest.fail.Exception, match=r"unexpected command \['ipset', 'save'\]"):
        try:
            runner.run(["ipset", "save"])
        except Exception:  # what the code under test may do around a command: it must not hide the failure
            pass
    assert runner.calls == [(("ipset", "save"), None)]
