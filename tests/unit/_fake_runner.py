"""A fake command runner for the unit tests: answers from a table keyed by argv and records every call.

Strict: a command the table does not name fails the test (pytest.fail raises an outcome that the code under test
cannot swallow with `except Exception`), so each test says which commands it expects.
"""
from __future__ import annotations

import typing as t

import pytest
from ansible_collections.protectnet.epns.plugins.module_utils._firewall._base import Runner

Argv = t.Tuple[str, ...]
Answer = t.Tuple[int, str, str]
OK: Answer = (0, "", "")


class FakeRunner(Runner):
    """answers: argv (the program by its base name) -> (rc, stdout, stderr); tools: the programs `which` finds."""

    def __init__(self, answers: t.Dict[Argv, Answer], tools: t.Sequence[str] = ("nft",)) -> None:
        self.answers = answers
        self.tools = set(tools)
        self.calls: t.List[t.Tuple[Argv, t.Optional[str]]] = []

    def run(self, argv: t.Sequence[str], data: t.Optional[str] = None) -> Answer:
        key = tuple(a.rsplit("/", 1)[-1] if i == 0 else a for i, a in enumerate(argv))
        self.calls.append((key, data))
        if key not in self.answers:
            stdin = f" with stdin {data[:200]!r}" if data else ""
            pytest.fail(f"unexpected command {list(key)}{stdin}: the test's FakeRunner does not name it")
        return self.answers[key]

    def which(self, name: str) -> t.Optional[str]:
        return f"/usr/sbin/{name}" if name in self.tools else None
