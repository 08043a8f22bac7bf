# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# What every stage of one connection attempt works against: the clock that bounds the stage, and
# the attempt's record. The record is written by the attempt's worker thread and frozen by the main
# thread at the overall deadline, so every change to it happens under its lock and the first
# outcome wins. Standard library only; managed hosts run Python 3.8+.
from __future__ import annotations

import socket
import threading
import time
import typing as t

from .. import _epns
from ._classify import (
    Result,
    StageFailure,
    make_failure,
)


def ms(seconds: float) -> int:
    return round(seconds * 1000)


class StageClock:
    """Each stage gets connect_timeout seconds, but never beyond the overall deadline."""

    def __init__(self, deadline: float, stage_seconds: float) -> None:
        self.deadline = deadline
        self.stage_seconds = stage_seconds

    def stage_deadline(self) -> t.Tuple[float, bool]:
        """(deadline of a stage starting now, whether the overall deadline is the binding one)."""
        own = time.monotonic() + self.stage_seconds
        if own >= self.deadline:
            return self.deadline, True
        return own, False

    @staticmethod
    def remaining(deadline: float) -> float:
        """Seconds left for a socket timeout; an expired deadline is a timeout, not a zero (which
        would make the socket non-blocking)."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        return left


class AttemptLog:
    """One connection attempt to one address: its stages, TLS and MQTT details, and outcome."""

    def __init__(self, address: str, family: str, client_id: str = "",
                 planned: t.Tuple[str, ...] = ("tcp", "tls", "mqtt")) -> None:
        self.client_id = client_id
        self.planned = planned
        self.lock = threading.Lock()
        self.address = address
        self.family = family
        self.started = time.monotonic()
        self.finished: t.Optional[float] = None
        self.stages: t.List[Result] = []
        self.stage: t.Optional[str] = None
        self.stage_started = self.started
        self.failure: t.Optional[Result] = None
        self.ok = False
        self.proven_by_auth = False
        self.proxy_status: t.Optional[str] = None
        self.tls: t.Optional[Result] = None
        self.mqtt: t.Optional[Result] = None
        self.abandoned = False

    @property
    def tls_verified(self) -> bool:
        return bool(self.tls and self.tls.get("verified"))

    def begin(self, stage: str) -> None:
        with self.lock:
            self.stage = stage
            self.stage_started = time.monotonic()

    def stage_seconds(self, name: str) -> float:
        """How long a finished stage took (0 if it has not finished)."""
        with self.lock:
            done = [s["elapsed_ms"] for s in self.stages if s["name"] == name]
        return done[-1] / 1000 if done else 0.0

    def stage_ok(self, detail: Result) -> None:
        with self.lock:
            if self.abandoned or self.stage is None:
                return
            self.stages.append({"name": self.stage, "ok": True,
                                "elapsed_ms": ms(time.monotonic() - self.stage_started),
                                "detail": detail})
            self.stage = None

    def fail(self, cls: str, message: str, raw_error: str = "", detail: t.Optional[Result] = None,
             proven_by_auth: bool = False) -> None:
        with self.lock:
            if self.abandoned or self.finished is not None:
                return
            self._end_stage_failed(cls, message, raw_error, detail, proven_by_auth)

    def record(self, failure: StageFailure) -> None:
        self.fail(failure.cls, failure.message, failure.raw_error, failure.detail,
                  failure.proven_by_auth)

    def succeed(self) -> None:
        with self.lock:
            if not self.abandoned and self.finished is None:
                self.ok = True
                self.finished = time.monotonic()

    def abandon(self) -> None:
        """Called by the main thread at the deadline: freeze whatever is unfinished as timeout."""
        with self.lock:
            if self.finished is not None:
                return
            self._end_stage_failed(_epns.TIMEOUT, f"the overall deadline ended the {self._current_stage()} stage",
                                   "deadline")
            self.abandoned = True

    def _end_stage_failed(self, cls: str, message: str, raw_error: str, detail: t.Optional[Result] = None,
                          proven_by_auth: bool = False) -> None:
        # Caller holds the lock. A proven_by_auth failure still counts as a working path.
        stage = self._current_stage()
        elapsed = ms(time.monotonic() - self.stage_started)
        self.stages.append({"name": stage, "ok": False, "elapsed_ms": elapsed, "detail": detail or {}})
        self.failure = make_failure(cls, stage, message, raw_error, elapsed)
        self.ok = proven_by_auth
        self.proven_by_auth = proven_by_auth
        self.stage = None
        self.finished = time.monotonic()

    def _current_stage(self) -> str:
        """The running stage, or between stages the one about to run (caller holds the lock)."""
        if self.stage is not None:
            return self.stage
        done = {s["name"] for s in self.stages}
        return next((s for s in self.planned if s not in done), self.planned[-1])

    def result(self) -> Result:
        with self.lock:
            end = self.finished if self.finished is not None else time.monotonic()
            return {
                "address": self.address,
                "family": self.family,
                "ok": self.ok,
                "proven_by_auth": self.proven_by_auth,
                "failure": self.failure,
                "elapsed_ms": ms(end - self.started),
                "stages": list(self.stages),
                "proxy_status": self.proxy_status,
                "tls": self.tls,
                "mqtt": self.mqtt,
            }
