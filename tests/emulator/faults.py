"""Injected misbehaviour (status answers, cloud 202s, dropped connections, delays) and the 202 result cache.

A fault matches calls by method, API path (fnmatch pattern; the cloud service prefix is not part of it) and
optionally service. Calls are counted per fault; from the `nth` matching call on, `times` calls (0 = all
further) get the fault. Faults apply to API calls only, never to /_emulator/.

`commit` (status and close only) runs the call first, so its change is made, and then answers the status or
drops the connection: the lost answer that a client must not answer with a blind retry.
"""
from __future__ import annotations

import fnmatch
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Tuple

ACTIONS = ("status", "accepted", "close", "delay")


@dataclass
class Fault:
    id: int
    action: str = "status"
    method: str = "*"
    path: str = "*"
    service: Optional[str] = None
    nth: int = 1
    times: int = 1
    status: int = 500
    body: Any = None
    headers: Dict[str, str] = field(default_factory=dict)
    pending: int = 0  # accepted: how many collection attempts answer 202 again before the result
    delay: float = 0.0
    commit: bool = False  # status/close: make the change, then lose the answer
    seen: int = 0
    fired: int = 0

    def matches(self, method: str, path: str, service: Optional[str]) -> bool:
        return (fnmatch.fnmatchcase(method.upper(), self.method.upper())
                and fnmatch.fnmatchcase(path, self.path)
                and (self.service is None or self.service == service))

    def take(self) -> bool:
        """Count one matching call; True if this call gets the fault."""
        self.seen += 1
        if self.seen < self.nth or (self.times and self.fired >= self.times):
            return False
        self.fired += 1
        return True


def parse_fault(spec: Dict[str, Any], fault_id: int) -> Fault:
    known = {k for k in Fault.__dataclass_fields__ if k not in ("id", "seen", "fired")}
    unknown = set(spec) - known
    if unknown:
        raise ValueError(f"unknown fault fields: {sorted(unknown)}")
    fault = Fault(id=fault_id, **spec)
    if fault.action not in ACTIONS:
        raise ValueError(f"action must be one of {ACTIONS}")
    if fault.nth < 1 or fault.times < 0 or not 100 <= fault.status <= 599:
        raise ValueError("nth >= 1, times >= 0 and a 1xx-5xx status are required")
    if fault.commit and fault.action not in ("status", "close"):
        raise ValueError("commit applies to the status and close actions only")
    return fault


class Faults:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rules: List[Fault] = []
        self.next_id = 1

    def add(self, spec: Dict[str, Any]) -> Fault:
        with self.lock:
            fault = parse_fault(spec, self.next_id)
            self.next_id += 1
            self.rules.append(fault)
            return fault

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def listing(self) -> List[Dict[str, Any]]:
        with self.lock:
            return [asdict(f) for f in self.rules]

    def pick(self, actions: Tuple[str, ...], method: str, path: str, service: Optional[str]) -> Optional[Fault]:
        """The first fault of the given kinds that fires for this call (each matching rule counts the call)."""
        chosen = None
        with self.lock:
            for fault in self.rules:
                if fault.action in actions and fault.matches(method, path, service) and fault.take() and not chosen:
                    chosen = fault
        return chosen


@dataclass
class Pending:
    fingerprint: str
    status: int
    headers: Dict[str, str]
    body: Any
    expires: float
    pending: int


class PendingResponses:
    """Cloud: a slow call answers 202 + response-id; the identical call with `response-id` collects it once."""

    def __init__(self, ttl: float = 600.0) -> None:
        self.ttl = ttl  # "404 after it was collected or after 10 min" (ESET-FACTS §3)
        self.lock = threading.Lock()
        self.items: Dict[str, Pending] = {}

    def park(self, fingerprint: str, status: int, headers: Dict[str, str], body: Any, pending: int) -> str:
        response_id = str(uuid.uuid4())
        with self.lock:
            self.items[response_id] = Pending(fingerprint, status, headers, body, time.time() + self.ttl, pending)
        return response_id

    def collect(self, response_id: str, fingerprint: str) -> Optional[Pending]:
        """The parked result; one with `pending` left is returned with status 202 and stays parked."""
        with self.lock:
            item = self.items.get(response_id)
            if item is not None and item.expires <= time.time():
                del self.items[response_id]
                item = None
            if item is None or item.fingerprint != fingerprint:
                return None
            if item.pending > 0:
                item.pending -= 1
                return Pending(fingerprint, 202, {}, None, item.expires, item.pending)
            return self.items.pop(response_id)

    def clear(self) -> None:
        with self.lock:
            self.items.clear()
