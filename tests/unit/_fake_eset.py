"""A tiny in-process ESET PROTECT API for the unit tests: both logins, policies, assignments, groups, faults.

Only what the client and the modules use, written from ESET-FACTS §3; the full emulator lives in tests/emulator.
Plain HTTP by default (the tests point api_urls at it), HTTPS when given a certificate.
"""
from __future__ import annotations

import json
import re
import ssl
import threading
import time
import typing as t
import uuid as uuidlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PASSWORD = "Fake-Pass-7c1e!"  # the test password: must never appear in any output


@dataclass
class Fault:
    method: str
    path: str            # regex, matched against the path without query
    status: int
    times: int = 1
    headers: t.Dict[str, str] = field(default_factory=dict)
    body: str = ""


@dataclass
class Recorded:
    method: str
    path: str
    query: t.Dict[str, t.List[str]]
    headers: t.Dict[str, str]
    body: str
    status: int = 0


class FakeEset:
    def __init__(self, deployment: str = "on_prem", page_size: int = 3, token_lifetime: int = 3600,
                 certfile: t.Optional[str] = None, keyfile: t.Optional[str] = None, username: str = "api-user",
                 password: str = PASSWORD) -> None:
        self.deployment = deployment
        self.page_size = page_size
        self.token_lifetime = token_lifetime
        self.username = username
        self.password = password
        self.lock = threading.RLock()
        self.tokens: t.Dict[str, float] = {}
        self.refresh_tokens: t.Set[str] = set()
        self.policies: t.Dict[str, t.Dict[str, t.Any]] = {}
        self.assignments: t.Dict[str, t.Dict[str, t.Any]] = {}
        self.groups: t.Dict[str, t.Dict[str, t.Any]] = {}
        self.faults: t.List[Fault] = []
        self.pending_202: t.Dict[str, t.Tuple[int, str]] = {}
        self.answer_202: t.List[str] = []  # regexes of paths answered once with 202 + response-id
        self.requests: t.List[Recorded] = []
        root = self.add_group("All", None)
        self.root = root
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.scheme = "http"
        if certfile:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile, keyfile)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    # -- lifecycle ----------------------------------------------------------------------------------
    def __enter__(self) -> FakeEset:
        self.thread.start()
        return self

    def __exit__(self, *exc: t.Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}"

    def params(self, **extra: t.Any) -> t.Dict[str, t.Any]:
        args: t.Dict[str, t.Any] = {"deployment": self.deployment, "username": self.username,
                                    "password": self.password, "api_urls": {"default": self.url}, "retries": 4}
        args.update(extra)
        return args

    # -- state helpers ------------------------------------------------------------------------------
    def add_group(self, name: str, parent: t.Optional[str]) -> str:
        uuid = str(uuidlib.uuid4())
        self.groups[uuid] = {"uuid": uuid, "displayName": name, "parentGroupUuid": parent}
        return uuid

    def add_policy(self, name: str, product: str, data_b64: str, built_in: bool = False,
                   description: str = "") -> str:
        uuid = str(uuidlib.uuid4())
        self.policies[uuid] = {"uuid": uuid, "displayName": name, "description": description, "builtIn": built_in,
                               "features": [{"featureId": 4294967295, "flags": {}, "configuration": {
                                   "@type": "type.googleapis.com/Era.Common.DataDefinition.Policy.PolicyData",
                                   "product": product, "data": data_b64}}]}
        return uuid

    def add_assignment(self, policy_uuid: str, group_uuid: str) -> t.Dict[str, t.Any]:
        uuid = str(uuidlib.uuid4())
        target = {"deviceGroupUuid": group_uuid}
        rank = 1 + sum(1 for a in self.assignments.values() if a["target"] == target)
        self.assignments[uuid] = {"uuid": uuid, "policyUuid": policy_uuid, "target": target, "rank": rank}
        return self.assignments[uuid]

    def ranks(self, group_uuid: str) -> t.List[t.Tuple[str, int]]:
        """(policy uuid, rank) on a group, best first."""
        found = [a for a in self.assignments.values() if a["target"].get("deviceGroupUuid") == group_uuid]
        return [(a["policyUuid"], a["rank"]) for a in sorted(found, key=lambda a: a["rank"])]

    def _renumber(self, target: t.Dict[str, str], order: t.List[str]) -> None:
        for rank, uuid in enumerate(order, 1):
            self.assignments[uuid]["rank"] = rank

    def _target_order(self, target: t.Dict[str, str]) -> t.List[str]:
        found = [a for a in self.assignments.values() if a["target"] == target]
        return [a["uuid"] for a in sorted(found, key=lambda a: a["rank"])]

    def writes(self) -> t.List[Recorded]:
        auth = ("/GetTokens", "/oauth/token")
        return [r for r in self.requests if r.method != "GET" and r.path not in auth]

    # -- HTTP ---------------------------------------------------------------------------------------
    def _handler(self) -> t.Type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: t.Any) -> None:
                pass

            def _reply(self, status: int, body: t.Any = None, headers: t.Optional[t.Dict[str, str]] = None) -> None:
                text = body if isinstance(body, str) else (json.dumps(body) if body is not None else "")
                data = text.encode()
                self.send_response(status)
                self.send_header("request-id", str(uuidlib.uuid4()))
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
                fake.requests[-1].status = status

            def _handle(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                with fake.lock:
                    fake.requests.append(Recorded(method, parts.path, parse_qs(parts.query),
                                                  {k.lower(): v for k, v in self.headers.items()}, body))
                    for fault in fake.faults:
                        if fault.times and fault.method == method and re.fullmatch(fault.path, parts.path):
                            fault.times -= 1
                            return self._reply(fault.status, fault.body, fault.headers)
                    status, answer, headers = fake.route(method, parts.path, parse_qs(parts.query), body,
                                                         {k.lower(): v for k, v in self.headers.items()})
                    return self._reply(status, answer, headers)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

        return Handler

    def _new_token(self) -> str:
        token = "tok-" + uuidlib.uuid4().hex
        self.tokens[token] = time.monotonic() + self.token_lifetime
        return token

    def expire_all_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def route(self, method: str, path: str, query: t.Dict[str, t.List[str]], body: str,
              headers: t.Dict[str, str]) -> t.Tuple[int, t.Any, t.Dict[str, str]]:
        if path == "/GetTokens" and method == "POST":
            login = json.loads(body or "{}")
            if login.get("username") != self.username or login.get("password") != self.password:
                return 401, {"message": "bad credentials"}, {}
            return 200, {"accessToken": self._new_token(), "expiresIn": self.token_lifetime}, {}
        if path == "/oauth/token" and method == "POST":
            form = {k: v[0] for k, v in parse_qs(body).items()}
            if form.get("grant_type") == "refresh_token":
                if form.get("refresh_token") not in self.refresh_tokens:
                    return 400, {"error": "invalid_grant"}, {}
                self.refresh_tokens.discard(form["refresh_token"])
            elif form.get("username") != self.username or form.get("password") != self.password:
                return 400, {"error": "invalid_grant"}, {}
            refresh = "ref-" + uuidlib.uuid4().hex
            self.refresh_tokens.add(refresh)
            return 200, {"access_token": self._new_token(), "refresh_token": refresh, "token_type": "Bearer",
                         "expires_in": self.token_lifetime}, {}
        auth = headers.get("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        if token not in self.tokens or self.tokens[token] < time.monotonic():
            return 401, "", {}
        if headers.get("response-id"):
            rid = headers["response-id"]
            if rid not in self.pending_202:
                return 404, "", {}
            status, text = self.pending_202.pop(rid)
            return status, text, {}
        status, answer = self._api(method, path, query, body)
        for pattern in list(self.answer_202):
            if re.fullmatch(pattern, path):
                self.answer_202.remove(pattern)
                rid = str(uuidlib.uuid4())
                self.pending_202[rid] = (status, json.dumps(answer))
                return 202, "", {"response-id": rid}
        return status, answer, {}

    def _page(self, items: t.List[t.Any], key: str, query: t.Dict[str, t.List[str]]) -> t.Dict[str, t.Any]:
        size = int((query.get("pageSize") or [0])[0]) or self.page_size
        start = int((query.get("pageToken") or ["0"])[0] or 0)
        page = items[start:start + size]
        nxt = str(start + size) if start + size < len(items) else ""
        return {key: page, "nextPageToken": nxt}

    def _api(self, method: str, path: str, query: t.Dict[str, t.List[str]],
             body: str) -> t.Tuple[int, t.Any]:
        m = re.fullmatch(r"/v2/policies(?:/([^/:]+))?", path)
        if m:
            uuid = m.group(1)
            if uuid is None and method == "GET":
                return 200, self._page(list(self.policies.values()), "policies", query)
            if uuid is None and method == "POST":
                policy = json.loads(body)["policy"]
                new = self.add_policy(policy["displayName"], policy["features"][0]["configuration"]["product"],
                                      policy["features"][0]["configuration"]["data"],
                                      description=policy.get("description", ""))
                return 200, {"policy": self.policies[new]}
            if uuid not in self.policies:
                return 404, {"message": "no such policy"}
            if method == "GET":
                return 200, {"policy": self.policies[uuid]}
            if method == "DELETE":
                if self.policies[uuid]["builtIn"]:
                    return 403, {"message": "built-in"}
                if any(a["policyUuid"] == uuid for a in self.assignments.values()):
                    return 412, {"message": "the policy is still assigned"}  # as the emulator decided
                del self.policies[uuid]
                for a in [a for a in self.assignments.values() if a["policyUuid"] == uuid]:
                    target = a["target"]
                    del self.assignments[a["uuid"]]
                    self._renumber(target, self._target_order(target))
                return 200, {}
        m = re.fullmatch(r"/v2/policy-assignments(?:/([^/:]+)(:updateRanking)?)?", path)
        if m:
            uuid, rerank = m.group(1), m.group(2)
            if uuid is None and method == "GET":
                items = list(self.assignments.values())
                if query.get("policyUuid"):
                    items = [a for a in items if a["policyUuid"] == query["policyUuid"][0]]
                if query.get("target.deviceGroupUuid"):
                    items = [a for a in items if a["target"].get("deviceGroupUuid") ==
                             query["target.deviceGroupUuid"][0]]
                return 200, self._page(items, "assignments", query)
            if uuid is None and method == "POST":
                assignment = json.loads(body)["assignment"]
                if assignment["policyUuid"] not in self.policies:
                    return 400, {"message": "no such policy"}
                if any(a["policyUuid"] == assignment["policyUuid"] and a["target"] == assignment["target"]
                       for a in self.assignments.values()):
                    return 409, {"message": "already assigned"}
                return 200, {"assignment": self.add_assignment(assignment["policyUuid"],
                                                               assignment["target"]["deviceGroupUuid"])}
            if uuid not in self.assignments:
                return 404, {"message": "no such assignment"}
            if rerank and method == "POST":
                rank = json.loads(body).get("rank", 0)
                target = self.assignments[uuid]["target"]
                order = self._target_order(target)
                if rank == 0:
                    return 400, {"message": "rank 0"}
                if rank > len(order):
                    return 412, {"message": "rank above count"}
                order.remove(uuid)
                order.insert(rank - 1, uuid)
                self._renumber(target, order)
                return 200, {}
            if method == "GET":
                return 200, {"assignment": self.assignments[uuid]}
            if method == "DELETE":
                target = self.assignments.pop(uuid)["target"]
                self._renumber(target, self._target_order(target))
                return 200, {}
        if path == "/v1/device_groups" and method == "GET":
            return 200, self._page(list(self.groups.values()), "deviceGroups", query)
        return 404, {"message": "no route"}
