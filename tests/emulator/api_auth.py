"""Login calls: On-Prem `POST /GetTokens` and Cloud `POST /oauth/token`."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Tuple
from urllib.parse import parse_qs

from .auth import BUILTIN_ADMIN
from .call import Call
from .errors import INVALID_ARGUMENT, PERMISSION_DENIED, ApiError, bad

if TYPE_CHECKING:
    from .server import Emulator


def get_tokens(emu: Emulator, call: Call) -> Tuple[int, Any]:
    """On-Prem: JSON {"username","password","grant_type":0} -> {"accessToken","expiresIn"}."""
    body = call.message("GetTokensRequest")
    username, password = body.get("username", ""), body.get("password", "")
    if not username or not password:
        raise bad("username and password are required")
    if "grantType" not in body:
        # 13.0 docs always send it; an absent enum would silently mean 0, but clients must send it.
        call.record.warnings.append("grant_type not sent")
    if not emu.tokens.check_password(username, password):
        raise ApiError(16, "invalid credentials", empty=True)
    if username == BUILTIN_ADMIN:
        # "the built-in Administrator cannot use the API" (ESET-FACTS §3); the status is our choice.
        raise ApiError(PERMISSION_DENIED, "the built-in Administrator cannot use the API")
    issued = emu.tokens.issue(username, with_refresh=False)
    return 200, {"accessToken": issued["access"], "expiresIn": issued["expires_in"]}


def _oauth_error(error: str, description: str) -> ApiError:
    # RFC 6749 §5.2: token endpoint errors are 400 with {"error": ...}; ESET documents no other shape.
    return ApiError(INVALID_ARGUMENT, error, body={"error": error, "error_description": description})


def oauth_token(emu: Emulator, call: Call) -> Tuple[int, Any]:
    """Cloud: form-encoded password or refresh_token grant -> RFC 6749 token response."""
    content_type = (call.header("Content-Type") or "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise _oauth_error("invalid_request", "the body must be application/x-www-form-urlencoded")
    try:
        form = parse_qs(call.body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(call.body))
    except (UnicodeDecodeError, ValueError):
        raise _oauth_error("invalid_request", "malformed form body") from None
    fields = {k: v[-1] for k, v in form.items()}
    grant = fields.get("grant_type", "")
    if grant == "password":
        username, password = fields.get("username", ""), fields.get("password", "")
        if not username or not password:
            raise _oauth_error("invalid_request", "username and password are required")
        if not emu.tokens.check_password(username, password):
            raise _oauth_error("invalid_grant", "invalid username or password")
        user = username
    elif grant == "refresh_token":
        if not fields.get("refresh_token"):
            raise _oauth_error("invalid_request", "refresh_token is required")
        user = emu.tokens.use_refresh(fields["refresh_token"])
    elif not grant:
        raise _oauth_error("invalid_request", "grant_type is required")
    else:
        raise _oauth_error("unsupported_grant_type", f"grant_type {grant!r} is not supported")
    issued = emu.tokens.issue(user, with_refresh=True)
    return 200, {"access_token": issued["access"], "refresh_token": issued["refresh"], "token_type": "Bearer",
                 "expires_in": issued["expires_in"]}
