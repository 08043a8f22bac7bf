"""The Emulator: an HTTPS server (stdlib http.server + ssl, one thread per connection) tying the parts together.

Order of work for an API call, chosen to match a gateway in front of a service:
route (404/405) -> injected status/close/delay faults -> bearer token (400/401, rate limit 429) ->
collect a parked 202 result (`response-id` header) or run the handler -> injected 202 -> respond.
Every response carries a fresh `request-id` header.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import socket
import ssl
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Dict, Optional, Tuple, Type
from urllib.parse import parse_qs, urlsplit

from . import control
from .auth import BUILTIN_ADMIN, Tokens
from .call import Call, Options
from .errors import ApiError, not_found
from .faults import Fault, Faults, PendingResponses
from .pki import make_pki
from .recorder import Recorder
from .routes import SERVICES, resolve, routes_for, split_service
from .state import State

DEFAULT_USERS = {"api-user": "Api-Pa55word!", BUILTIN_ADMIN: "Admin-Pa55word!"}
DEPLOYMENTS = ("onprem", "cloud")


class Emulator:
    def __init__(self, deployment: str = "onprem", host: str = "127.0.0.1", port: int = 0,
                 certfile: Optional[str] = None, keyfile: Optional[str] = None,
                 users: Optional[Dict[str, str]] = None, token_lifetime: float = 3600,
                 config_write_path: Optional[str] = None, state_file: Optional[str] = None,
                 rate_limit: Optional[float] = None, int64_as_string: bool = False,
                 emit_unpopulated: bool = False, onprem_version: str = "13.1", pending_ttl: float = 600) -> None:
        if deployment not in DEPLOYMENTS:
            raise ValueError(f"deployment must be one of {DEPLOYMENTS}")
        self.deployment = deployment
        self.host, self.port = host, port
        self._tmp: Optional[str] = None
        self.ca_path: Optional[str] = None
        if not certfile or not keyfile:
            # No certificate given: make a throwaway CA; clients verify with `emulator.ca_path`.
            self._tmp = tempfile.mkdtemp(prefix="eset-emulator-")
            pki = make_pki(Path(self._tmp), [host])
            certfile, keyfile, self.ca_path = str(pki.cert), str(pki.key), str(pki.ca)
        self.certfile, self.keyfile = certfile, keyfile
        self.options = Options(deployment, int64_as_string, emit_unpopulated)
        self.users = dict(DEFAULT_USERS if users is None else users)
        self.tokens = Tokens(self.users, token_lifetime, rate_limit)
        self.config_write_path = config_write_path
        self.onprem_version = onprem_version
        self.routes = routes_for(config_write_path, onprem_version)
        self.state = State(deployment, state_file)
        self.faults = Faults()
        self.pending = PendingResponses(pending_ttl)
        self.recorder = Recorder()
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> Emulator:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.certfile, self.keyfile)
        httpd = _Server((self.host, self.port), _Handler)
        httpd.emulator, httpd.tls = self, context
        self.port = httpd.server_address[1]
        self._httpd = httpd
        # A short poll interval: stop() waits for it, and tests start and stop emulators often.
        self._thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), name="eset-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, kind: Optional[Type[BaseException]], value: Optional[BaseException],
                 trace: Optional[TracebackType]) -> None:
        self.stop()

    # -- addresses ----------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    @property
    def base_url_template(self) -> str:
        """Cloud: format with service= business-account.iam | policy-management | device-management."""
        return self.url + "/{service}" if self.deployment == "cloud" else self.url

    @property
    def base_urls(self) -> Dict[str, str]:
        return {service: self.base_url_template.format(service=service) for service in SERVICES}

    @property
    def requests(self) -> list:
        return self.recorder.listing()

    def info(self) -> Dict[str, Any]:
        return {"deployment": self.deployment, "url": self.url, "base_url_template": self.base_url_template,
                "base_urls": self.base_urls, "users": sorted(self.users), "token_lifetime": self.tokens.lifetime,
                "rate_limit": self.tokens.rate_limit, "config_write_path": self.config_write_path,
                "onprem_version": self.onprem_version, "int64_as_string": self.options.int64_as_string,
                "emit_unpopulated": self.options.emit_unpopulated}

    def reset(self) -> None:
        self.state.reset()
        self.faults.clear()
        self.tokens.clear()
        self.pending.clear()
        self.recorder.clear()

    def add_fault(self, **spec: Any) -> int:
        return self.faults.add(spec).id

    # -- one call -----------------------------------------------------------------------------------------
    def handle(self, req: _Handler) -> None:
        request_id = str(uuid.uuid4())
        body = req.read_body()
        if body is None:
            req.reply(411, {"code": 3, "message": "Content-Length required", "details": []}, {}, request_id)
            return
        parts = urlsplit(req.path)
        service, api_path = split_service(self.deployment, req.headers.get("Host", ""), parts.path)
        if api_path.startswith(control.PREFIX):  # also under a cloud service prefix: any base URL reaches it
            status, payload = control.handle(self, req.command, api_path, parts.query, body)
            req.reply(status, payload, {}, request_id)
            return
        headers = {k: v for k, v in req.headers.items()}
        record = self.recorder.new(method=req.command, path=parts.path, api_path=api_path, service=service,
                                   query=parse_qs(parts.query, keep_blank_values=True), headers=headers,
                                   body=_loggable(body, headers), request_id=request_id)
        call = Call(req.command, api_path, service, record.query, headers, body, record, self.options)
        extra: Dict[str, str] = {}
        try:
            status, payload, extra = self._process(call)
        except ApiError as exc:
            status, payload, extra = exc.status, exc.payload(), exc.headers
        except _Drop:
            self.recorder.finish(record, 0, None)
            req.close_connection = True
            return
        self.recorder.finish(record, status, payload)
        req.reply(status, payload, extra, request_id)

    def _process(self, call: Call) -> Tuple[int, Any, Dict[str, str]]:
        route, params, allowed = resolve(self.routes, self.deployment, call.service, call.method, call.api_path)
        if route is None:
            if allowed:
                raise ApiError(12, "method not allowed", status=405, headers={"Allow": ", ".join(allowed)})
            where = f" on service {call.service}" if self.deployment == "cloud" else ""
            raise not_found(f"no route {call.method} {call.api_path}{where}")
        call.params = params
        fault = self.faults.pick(("status", "close", "delay"), call.method, call.api_path, call.service)
        if fault is not None:
            call.record.fault = fault.id
            if fault.action == "delay":
                time.sleep(fault.delay)
            elif not fault.commit:
                _inject(fault)
        if route.auth:
            call.user = call.record.user = self.tokens.authenticate(call.header("Authorization"))
        response_id = call.header("response-id")
        if response_id:
            parked = self.pending.collect(response_id.strip(), _fingerprint(call))
            if parked is None:
                raise ApiError(5, "no pending response", empty=True)
            call.record.response_id = response_id.strip()
            if parked.status == 202:
                return 202, None, {"response-id": response_id.strip()}
            return parked.status, parked.body, parked.headers
        try:
            status, payload = route.handler(self, call)
            headers: Dict[str, str] = {}
        except ApiError as exc:
            status, payload, headers = exc.status, exc.payload(), exc.headers
        if fault is not None and fault.commit:
            _inject(fault)  # the change is made; its answer is lost
        accepted = self.faults.pick(("accepted",), call.method, call.api_path, call.service)
        if accepted is None:
            if status >= 400:
                raise ApiError(0, "", status=status, body=payload, empty=payload is None, headers=headers)
            return status, payload, headers
        # The work is done (a create really created); the client gets only a ticket for the result.
        call.record.fault = accepted.id
        parked_id = self.pending.park(_fingerprint(call), status, headers, payload, accepted.pending)
        call.record.response_id = parked_id
        return 202, None, {"response-id": parked_id}


class _Drop(Exception):
    """Injected fault: close the connection without an answer."""


def _inject(fault: Fault) -> None:
    """Answer with the fault instead of the call's result: a dropped connection or the rule's status."""
    if fault.action == "close":
        raise _Drop()
    # Injected answers are empty unless the rule gives a body, like the real 429/5xx.
    raise ApiError(0, "injected", status=fault.status, empty=fault.body is None, body=fault.body,
                   headers=dict(fault.headers))


def _fingerprint(call: Call) -> str:
    """What makes two calls "identical" for collecting a 202: method, service, path, query and body (JSON
    bodies compared as data, so key order and spacing do not matter)."""
    try:
        body: Any = json.loads(call.body) if call.body.strip() else None
    except ValueError:
        body = call.body.decode("latin-1")
    blob = json.dumps([call.method, call.service, call.api_path, sorted(call.query.items()), body], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _loggable(body: bytes, headers: Dict[str, str]) -> Any:
    if not body:
        return None
    text = body.decode("utf-8", "replace")
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if "x-www-form-urlencoded" in content_type:
        return {k: v[-1] if len(v) == 1 else v for k, v in parse_qs(text, keep_blank_values=True).items()}
    try:
        return json.loads(text)
    except ValueError:
        return text


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: Emulator
    tls: ssl.SSLContext

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # handshake failures and client resets are the tests' business, not noise on stderr


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real clients expect; every reply has Content-Length
    server: _Server

    def setup(self) -> None:
        # Headers and body leave in separate writes; without NODELAY, Nagle + delayed ACK adds 40 ms a call.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # TLS handshake here, in the connection's own thread, so one slow client cannot stall accept().
        self.request = self.server.tls.wrap_socket(self.request, server_side=True)
        super().setup()

    def read_body(self) -> Optional[bytes]:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return None
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reply(self, status: int, payload: Any, headers: Dict[str, str], request_id: str) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("request-id", request_id)
        for name, value in headers.items():
            self.send_header(name, value)
        if payload is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.server.emulator.handle(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the recorder is the log
