"""Every API call as tests need to see it, with credentials and tokens replaced by "***".

Redaction happens when the record is made, so no secret is kept in memory, the state file or
/_emulator/requests output.

A response list longer than RECORDED_ITEMS (a page of a 10000-device fleet) is not kept: the record holds
"<N items, not recorded>" in its place, so a long bench run does not hold every page in memory. The count of
every list in a response is in `response_items` ({"devices": 10000}), kept or not.
"""
from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

REDACTED = "***"
RECORDED_ITEMS = 100
SECRET_KEYS = {"password", "refresh_token", "access_token", "accesstoken", "refreshtoken", "client_secret"}
SECRET_HEADERS = {"authorization", "cookie", "proxy-authorization"}


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (REDACTED if str(k).lower() in SECRET_KEYS else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def redact_headers(headers: Dict[str, str]) -> Dict[str, str]:
    out = {}
    for name, value in headers.items():
        if name.lower() in SECRET_HEADERS:
            scheme = value.split(" ", 1)[0] if " " in value else ""
            value = f"{scheme} {REDACTED}".strip()
        out[name] = value
    return out


@dataclass
class Record:
    seq: int
    time: float
    method: str
    path: str  # as sent, including any cloud service prefix
    api_path: str  # the API route the call was matched against
    service: Optional[str]
    query: Dict[str, List[str]]
    headers: Dict[str, str]
    body: Any  # parsed JSON or form, redacted; raw text if neither
    request_id: str
    status: int = 0
    response: Any = None  # parsed JSON answer, redacted
    response_items: Dict[str, int] = field(default_factory=dict)  # list field -> its length
    response_id: Optional[str] = None
    user: Optional[str] = None
    fault: Optional[int] = None
    warnings: List[str] = field(default_factory=list)


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.records: List[Record] = []

    def new(self, **fields: Any) -> Record:
        with self.lock:
            record = Record(seq=len(self.records) + 1, time=time.time(), **fields)
            record.headers = redact_headers(record.headers)
            record.body = redact(record.body)
            self.records.append(record)
            return record

    def finish(self, record: Record, status: int, response: Any) -> None:
        with self.lock:
            record.status = status
            if isinstance(response, dict):
                record.response_items = {k: len(v) for k, v in response.items() if isinstance(v, list)}
                response = {k: (f"<{len(v)} items, not recorded>" if isinstance(v, list) and len(v) > RECORDED_ITEMS
                                else v) for k, v in response.items()}
            record.response = redact(response)

    def listing(self, since: int = 0) -> List[Dict[str, Any]]:
        with self.lock:
            return [asdict(r) for r in self.records if r.seq > since]

    def clear(self) -> None:
        with self.lock:
            self.records.clear()
