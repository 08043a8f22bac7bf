"""Logins and bearer tokens for both deployments, with expiry, refresh and an optional per-token rate limit.

On-Prem: POST /GetTokens (JSON) -> {"accessToken","expiresIn"}; no refresh token, the client logs in again.
Cloud:   POST /oauth/token (form) -> {"access_token","refresh_token","token_type","expires_in"}.
"""
from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Deque, Dict, Optional

from .errors import UNAUTHENTICATED, ApiError, bad

# The built-in On-Prem administrator exists but "cannot use the API" (ESET-FACTS §3).
BUILTIN_ADMIN = "Administrator"
REFRESH_LIFETIME = 30 * 24 * 3600  # undocumented; long enough never to matter within a test


@dataclass
class Token:
    user: str
    expires: float
    calls: Deque[float] = field(default_factory=deque)


def unauthenticated(message: str) -> ApiError:
    # The specs list 401 with no body; a bearer challenge header is what HTTP clients expect to see.
    return ApiError(UNAUTHENTICATED, message, empty=True, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class Tokens:
    def __init__(self, users: Dict[str, str], lifetime: float, rate_limit: Optional[float] = None) -> None:
        self.users = dict(users)
        self.lifetime = lifetime
        self.rate_limit = rate_limit
        self.access: Dict[str, Token] = {}
        self.refresh: Dict[str, Token] = {}
        self.lock = threading.Lock()

    def clear(self) -> None:
        with self.lock:
            self.access.clear()
            self.refresh.clear()

    def expire_all(self, refresh_too: bool = False) -> int:
        with self.lock:
            for token in self.access.values():
                token.expires = 0.0
            if refresh_too:
                for token in self.refresh.values():
                    token.expires = 0.0
            return len(self.access)

    def check_password(self, username: str, password: str) -> bool:
        expected = self.users.get(username)
        return expected is not None and secrets.compare_digest(expected.encode(), password.encode())

    def issue(self, user: str, with_refresh: bool) -> Dict[str, object]:
        with self.lock:
            access = "emu-at-" + secrets.token_urlsafe(24)
            self.access[access] = Token(user, time.time() + self.lifetime)
            out: Dict[str, object] = {"access": access, "expires_in": int(self.lifetime)}
            if with_refresh:
                refresh = "emu-rt-" + secrets.token_urlsafe(24)
                self.refresh[refresh] = Token(user, time.time() + REFRESH_LIFETIME)
                out["refresh"] = refresh
            return out

    def use_refresh(self, refresh: str) -> str:
        """Consume a refresh token (they rotate: each is good for one refresh) and return its user."""
        with self.lock:
            token = self.refresh.pop(refresh, None)
        if token is None or token.expires <= time.time():
            raise ApiError(3, "invalid_grant", body={"error": "invalid_grant",
                                                      "error_description": "refresh token is invalid or expired"})
        return token.user

    def authenticate(self, header: Optional[str]) -> str:
        """The user behind an `Authorization` header.

        The specs' 400 reads "Bad or missing authorization", their 401 "Token has expired or is invalid":
        so no header or a non-Bearer one is 400, an unknown or expired token 401.
        """
        if not header:
            raise bad("missing authorization")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise bad("authorization must be 'Bearer <token>'")
        with self.lock:
            token = self.access.get(value.strip())
            if token is None:
                raise unauthenticated("invalid token")
            now = time.time()
            if token.expires <= now:
                raise unauthenticated("token expired")
            if self.rate_limit:
                while token.calls and token.calls[0] <= now - 1.0:
                    token.calls.popleft()
                if len(token.calls) >= self.rate_limit:
                    raise ApiError(8, "rate limit reached", empty=True, headers={"Retry-After": "1"})
                token.calls.append(now)
            return token.user
