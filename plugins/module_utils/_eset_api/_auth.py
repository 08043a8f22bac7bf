# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""Tokens: On-Prem logs in again (``POST /GetTokens``), the cloud refreshes (OAuth ``refresh_token``).

A token is renewed before it expires (a margin of a tenth of its lifetime, at most 60 seconds) and when the client
reports a 401. Every token and the password are handed to ``on_secret`` so the module masks them in all output.
"""
from __future__ import annotations

import json
import typing as t
from urllib.parse import urlencode

from ._errors import EsetApiError, EsetAuthError

# send(method, url, body, headers) -> (status, headers, body text); retries 429/5xx itself and raises EsetApiError
# for connection failures. It never follows the token anywhere else.
Sender = t.Callable[[str, str, bytes, t.Dict[str, str]], t.Tuple[int, t.Mapping[str, str], str]]

DEFAULT_LIFETIME = 3600
MAX_MARGIN = 60.0


class TokenSource:
    def __init__(self, url: str, username: str, password: str, send: Sender, clock: t.Callable[[], float],
                 on_secret: t.Callable[[str], None]) -> None:
        if not username or not password:
            raise EsetAuthError(None, "POST", url, message="username and password are required "
                                "(options, or ESET_PROTECT_USERNAME and ESET_PROTECT_PASSWORD)")
        self.url = url
        self.username = username
        self._password = password
        self._send = send
        self._clock = clock
        self._on_secret = on_secret
        self._token: t.Optional[str] = None
        self._expires_at = 0.0
        self.logins = 0
        self.refreshes = 0
        on_secret(password)

    @property
    def secrets(self) -> t.List[str]:
        return [s for s in (self._password, self._token, getattr(self, "_refresh", None)) if s]

    def _remember(self, token: t.Any, lifetime: t.Any, method: str, status: int, rid: t.Optional[str]) -> str:
        if not isinstance(token, str) or not token:
            raise EsetAuthError(status, method, self.url, request_id=rid,
                                message="the answer carries no access token", secrets=self.secrets)
        try:
            seconds = float(lifetime) if lifetime is not None else DEFAULT_LIFETIME
        except (TypeError, ValueError):
            seconds = DEFAULT_LIFETIME
        self._on_secret(token)
        self._token = token
        margin = min(MAX_MARGIN, seconds / 10.0)
        self._expires_at = self._clock() + max(seconds - margin, 0.0)
        return token

    def valid(self) -> bool:
        return self._token is not None and self._clock() < self._expires_at

    def token(self, renew: bool = False) -> str:
        """The current token; a new one when it is about to expire or ``renew`` (after a 401) is set."""
        if self._token is not None and not renew and self.valid():
            return self._token
        return self._obtain(had_token=self._token is not None)

    def _obtain(self, had_token: bool) -> str:
        raise NotImplementedError

    def _post(self, body: bytes, content_type: str) -> t.Tuple[int, t.Dict[str, t.Any], t.Optional[str]]:
        request_headers = {"Content-Type": content_type, "Accept": "application/json"}
        status, headers, text = self._send("POST", self.url, body, request_headers)
        rid = headers.get("request-id")
        if status >= 300:
            raise EsetAuthError(status, "POST", self.url, text, rid, message="login to ESET PROTECT failed",
                                secrets=self.secrets)
        try:
            answer = json.loads(text or "{}")
        except ValueError:
            raise EsetAuthError(status, "POST", self.url, "", rid, message="the token answer is not JSON",
                                secrets=self.secrets) from None
        if not isinstance(answer, dict):
            raise EsetAuthError(status, "POST", self.url, "", rid, message="the token answer is not an object",
                                secrets=self.secrets)
        return status, answer, rid


class OnPremTokens(TokenSource):
    """ESET PROTECT On-Prem 13+: ``POST /GetTokens`` with JSON; no refresh token, so it logs in again."""

    def __init__(self, *args: t.Any, domain_user: bool = False, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.domain_user = domain_user

    def _obtain(self, had_token: bool) -> str:
        login: t.Dict[str, t.Any] = {"username": self.username, "password": self._password, "grant_type": 0}
        if self.domain_user:
            login["is_domain_user"] = True
        status, answer, rid = self._post(json.dumps(login).encode("utf-8"), "application/json")
        self.logins += 1
        return self._remember(answer.get("accessToken"), answer.get("expiresIn"), "POST", status, rid)


class CloudTokens(TokenSource):
    """ESET Connect: OAuth password grant, then ``refresh_token`` grants; a failed refresh logs in again."""

    _refresh: t.Optional[str] = None

    def _obtain(self, had_token: bool) -> str:
        if had_token and self._refresh:
            try:
                status, answer, rid = self._post(urlencode({"grant_type": "refresh_token",
                                                            "refresh_token": self._refresh}).encode("ascii"),
                                                 "application/x-www-form-urlencoded")
                self.refreshes += 1
                return self._accept(status, answer, rid)
            except EsetApiError as exc:
                if exc.status is None or exc.status >= 500:
                    raise
                self._refresh = None  # refused: fall back to the password grant
        status, answer, rid = self._post(urlencode({"grant_type": "password", "username": self.username,
                                                    "password": self._password}).encode("utf-8"),
                                         "application/x-www-form-urlencoded")
        self.logins += 1
        return self._accept(status, answer, rid)

    def _accept(self, status: int, answer: t.Dict[str, t.Any], rid: t.Optional[str]) -> str:
        refresh = answer.get("refresh_token")
        if isinstance(refresh, str) and refresh:
            self._on_secret(refresh)
            self._refresh = refresh
        return self._remember(answer.get("access_token"), answer.get("expires_in"), "POST", status, rid)
