# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""Errors of the ESET PROTECT API client. Their text never holds a secret: bodies are redacted and cut."""
from __future__ import annotations

import typing as t

BODY_LIMIT = 2000
REDACTED = "********"
MIN_SECRET_LEN = 4  # shorter values ("0", "yes") would blank out ordinary text


def redact(text: str, secrets: t.Iterable[str]) -> str:
    """``text`` with every known secret (at least MIN_SECRET_LEN characters long) replaced."""
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LEN}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


class EsetApiError(Exception):
    """A call failed: the HTTP status (None when no answer came), the call, the body and ESET's request-id."""

    def __init__(self, status: t.Optional[int], method: str, url: str, body: str = "",
                 request_id: t.Optional[str] = None, message: str = "",
                 secrets: t.Iterable[str] = ()) -> None:
        self.status = status
        self.method = method
        self.url = redact(url, secrets)
        body = redact(body or "", secrets)
        self.body = body if len(body) <= BODY_LIMIT else body[:BODY_LIMIT] + f"... ({len(body)} characters)"
        self.request_id = request_id
        self.message = redact(message, secrets)
        # The server may have carried out the call (a 5xx or no answer to a call that is not idempotent).
        self.outcome_unknown = False
        # The request never reached the server (connection refused, unknown host): safe to repeat.
        self.never_sent = False
        # The same call fails the same way again (an untrusted certificate): retrying only delays the answer.
        self.permanent = False
        super().__init__(str(self))

    def __str__(self) -> str:
        status = f"HTTP {self.status}" if self.status is not None else "no HTTP answer"
        parts = [f"{self.method} {self.url} failed: {status}"]
        if self.message:
            parts.append(self.message)
        parts.append("request-id: {}".format(self.request_id or "none"))
        parts.append("body: {}".format(self.body.strip() if self.body.strip() else "(empty)"))
        return "; ".join(parts)

    def to_dict(self) -> t.Dict[str, t.Any]:
        return {"status": self.status, "method": self.method, "url": self.url, "body": self.body,
                "request_id": self.request_id, "message": self.message}


class EsetAuthError(EsetApiError):
    """Logging in or refreshing the token failed."""


class EsetConfigError(ValueError):
    """The connection options do not describe a usable deployment."""
