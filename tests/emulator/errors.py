"""API errors as the ESET gateway reports them: a gRPC status code mapped to an HTTP status.

ESET Connect is a gRPC service behind an HTTP gateway (its specs carry `rpcStatus`, `protobufAny` and
"INVALID_ARGUMENT (gRPC) or 400 (REST)"). The mapping below is the grpc-gateway v1 one, because that is
the only one in which FAILED_PRECONDITION is 412, which the spec states for `:updateRanking`.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

# gRPC code -> (name, HTTP status)
GRPC: Dict[int, tuple] = {
    3: ("INVALID_ARGUMENT", 400),
    5: ("NOT_FOUND", 404),
    6: ("ALREADY_EXISTS", 409),
    7: ("PERMISSION_DENIED", 403),
    8: ("RESOURCE_EXHAUSTED", 429),
    9: ("FAILED_PRECONDITION", 412),
    12: ("UNIMPLEMENTED", 501),
    16: ("UNAUTHENTICATED", 401),
}
INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED = 3, 5, 6, 7
RESOURCE_EXHAUSTED, FAILED_PRECONDITION, UNAUTHENTICATED = 8, 9, 16


class ApiError(Exception):
    """Raised anywhere in a handler; the server turns it into the response.

    `body` None means the gateway's usual small rpcStatus JSON; `empty=True` sends no body at all, which the
    facts say is common (401, 429 and the 5xx answers are sent empty).
    """

    def __init__(self, code: int, message: str, *, empty: bool = False, body: Optional[Any] = None,
                 status: Optional[int] = None, headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else GRPC.get(code, ("UNKNOWN", 500))[1]
        self.empty = empty
        self.body = body
        self.headers = headers or {}

    def payload(self) -> Optional[Any]:
        if self.empty:
            return None
        if self.body is not None:
            return self.body
        return {"code": self.code, "message": self.message, "details": []}


def bad(message: str) -> ApiError:
    return ApiError(INVALID_ARGUMENT, message)


def not_found(message: str) -> ApiError:
    return ApiError(NOT_FOUND, message)
