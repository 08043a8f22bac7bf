"""The ESET PROTECT API emulator (tests/emulator) behaves as ESET's specs and ESET-FACTS §3 say. Loopback only."""
from __future__ import annotations

import base64
import http.client
import json
import ssl
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, Optional
from urllib.parse import urlencode, urlsplit

import pytest

TESTS = Path(__file__).resolve().parent.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from emulator import DEFAULT_USERS, Emulator, group_uuid  # noqa: E402
from emulator.policydata import ar_archive, format1, format2  # noqa: E402

USER, PASSWORD = "api-user", DEFAULT_USERS["api-user"]
PD = "type.googleapis.com/Era.Common.DataDefinition.Policy.PolicyData"
SERVERS = group_uuid("All/Linux/Servers")


@dataclass
class Resp:
    status: int
    headers: Dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw) if self.raw else None


class Client:
    """Bare HTTPS calls, so tests control every header (Host, response-id) and see every byte."""

    def __init__(self, emu: Optional[Emulator], prefix: str = "", *, port: int = 0, ca: str = "") -> None:
        self.port = emu.port if emu else port
        self.prefix = prefix
        self.context = ssl.create_default_context(cafile=emu.ca_path if emu else ca)
        self.token: Optional[str] = None

    def call(self, method: str, path: str, body: Any = None, *, token: Optional[str] = "auto",
             headers: Optional[Dict[str, str]] = None, form: Optional[Dict[str, str]] = None,
             raw: Optional[bytes] = None) -> Resp:
        sent = dict(headers or {})
        data = raw
        if form is not None:
            data = urlencode(form).encode()
            sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif body is not None:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        if token == "auto":
            token = self.token
        if token:
            sent["Authorization"] = f"Bearer {token}"
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=10)
        try:
            conn.request(method, self.prefix + path, body=data, headers=sent)
            resp = conn.getresponse()
            return Resp(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def login(self) -> str:
        resp = self.call("POST", "/GetTokens", {"username": USER, "password": PASSWORD, "grant_type": 0})
        assert resp.status == 200, resp.raw
        self.token = resp.json["accessToken"]
        return self.token


def cloud_login(emu: Emulator) -> Dict[str, Any]:
    resp = Client(emu, "/business-account.iam").call(
        "POST", "/oauth/token", form={"grant_type": "password", "username": USER, "password": PASSWORD})
    assert resp.status == 200, resp.raw
    return resp.json


def policy_body(name: str = "Agent proxy", data: Optional[str] = None, **extra: Any) -> Dict[str, Any]:
    data = data or format2("agent", "13.0", {"Proxy": {"ce_flags": 0, "Port": {"ce_flags": 4, "ce_type": 2,
                                                                                "ce_value": 3128}}},
                           member="agent.proxy.settings.lzma")
    return {"policy": {"displayName": name, "description": "test",
                       "features": [{"featureId": 4294967295, "flags": {},
                                     "configuration": {"@type": PD, "product": "eset.local.products.agent",
                                                       "data": data}}], **extra}}


@pytest.fixture(scope="module")
def onprem() -> Iterator[Emulator]:
    with Emulator("onprem", config_write_path="/v2/configuration:batchSetValues") as emu:
        yield emu


@pytest.fixture(scope="module")
def cloud() -> Iterator[Emulator]:
    with Emulator("cloud") as emu:
        yield emu


@pytest.fixture
def api(onprem: Emulator) -> Client:
    onprem.reset()
    client = Client(onprem)
    client.login()
    return client


@pytest.fixture
def capi(cloud: Emulator) -> Client:
    cloud.reset()
    client = Client(cloud, "/policy-management")
    client.token = cloud_login(cloud)["access_token"]
    return client


# -- TLS and auth ---------------------------------------------------------------------------------------------

def test_tls_verifies_with_generated_ca_and_not_without(onprem: Emulator) -> None:
    assert Client(onprem).call("GET", "/_emulator/info").json["url"] == onprem.url
    conn = http.client.HTTPSConnection("127.0.0.1", onprem.port, context=ssl.create_default_context(), timeout=5)
    with pytest.raises(ssl.SSLCertVerificationError):
        conn.request("GET", "/_emulator/info")
    conn.close()


def test_onprem_login(onprem: Emulator) -> None:
    client = Client(onprem)
    bad = client.call("POST", "/GetTokens", {"username": USER, "password": "wrong", "grant_type": 0})
    assert bad.status == 401 and bad.raw == b"" and bad.headers["request-id"]
    admin = client.call("POST", "/GetTokens", {"username": "Administrator",
                                               "password": DEFAULT_USERS["Administrator"], "grant_type": 0})
    assert admin.status == 403
    # The 13.1 spelling seen in a public client is the same protobuf field, so it works too.
    ok = client.call("POST", "/GetTokens", {"username": USER, "password": PASSWORD, "grantType": "PASSWORD"})
    assert ok.status == 200 and ok.json["expiresIn"] == 3600 and ok.json["accessToken"]
    assert client.call("POST", "/GetTokens", {"username": USER, "password": PASSWORD, "grant_type": 7}).status == 400
    assert client.call("POST", "/GetTokens", raw=b"{not json").status == 400


def test_bearer_token_required_and_expires(api: Client, onprem: Emulator) -> None:
    assert api.call("GET", "/v2/policies").status == 200
    assert api.call("GET", "/v2/policies", token=None).status == 400  # spec: "missing authorization" is a 400
    assert api.call("GET", "/v2/policies", token="forged").status == 401
    assert api.call("POST", "/_emulator/tokens:expire", token=None).json == {"expired": 1}
    expired = api.call("GET", "/v2/policies")
    assert expired.status == 401 and expired.raw == b"" and expired.headers["request-id"]
    api.login()
    assert api.call("GET", "/v2/policies").status == 200


def test_token_lifetime_runs_out() -> None:
    with Emulator("onprem", token_lifetime=0.3) as emu:
        client = Client(emu)
        client.login()
        assert client.call("GET", "/v1/device_groups").status == 200
        time.sleep(0.4)
        assert client.call("GET", "/v1/device_groups").status == 401


def test_cloud_oauth_password_and_refresh(cloud: Emulator) -> None:
    cloud.reset()
    iam = Client(cloud, "/business-account.iam")
    tokens = cloud_login(cloud)
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
    refreshed = iam.call("POST", "/oauth/token", form={"grant_type": "refresh_token",
                                                       "refresh_token": tokens["refresh_token"]})
    assert refreshed.status == 200 and refreshed.json["access_token"] != tokens["access_token"]
    reused = iam.call("POST", "/oauth/token", form={"grant_type": "refresh_token",
                                                    "refresh_token": tokens["refresh_token"]})
    assert reused.status == 400 and reused.json["error"] == "invalid_grant"  # refresh tokens rotate
    wrong = iam.call("POST", "/oauth/token", form={"grant_type": "password", "username": USER, "password": "x"})
    assert wrong.status == 400 and wrong.json["error"] == "invalid_grant"
    as_json = iam.call("POST", "/oauth/token", {"grant_type": "password", "username": USER, "password": PASSWORD})
    assert as_json.status == 400
    assert iam.call("POST", "/oauth/token", form={"grant_type": "client_credentials"}).json["error"] == \
        "unsupported_grant_type"


def test_cloud_routes_by_service_prefix_or_host(capi: Client, cloud: Emulator) -> None:
    assert capi.call("GET", "/v2/policies").status == 200
    by_host = Client(cloud).call("GET", "/v2/policies", token=capi.token,
                                 headers={"Host": "eu.policy-management.eset.systems"})
    assert by_host.status == 200
    wrong_service = Client(cloud, "/device-management").call("GET", "/v2/policies", token=capi.token)
    assert wrong_service.status == 404
    assert Client(cloud).call("GET", "/v2/policies", token=capi.token).status == 404  # no service at all
    assert Client(cloud).call("POST", "/GetTokens", {"username": USER, "password": PASSWORD}).status == 404
    groups = Client(cloud, "/device-management").call("GET", "/v1/device_groups", token=capi.token)
    assert groups.status == 200
    assert cloud.base_urls["policy-management"] == f"{cloud.url}/policy-management"


# -- paging -----------------------------------------------------------------------------------------------------

def test_paging_walks_every_item_once(api: Client) -> None:
    api.call("POST", "/_emulator/seed", {"policies": [{"displayName": f"p{i}"} for i in range(7)]})
    seen, token, pages = [], "", 0
    while True:
        resp = api.call("GET", f"/v2/policies?pageSize=5&pageToken={token}")
        assert resp.status == 200
        seen += [p["uuid"] for p in resp.json["policies"]]
        pages += 1
        token = resp.json.get("nextPageToken", "")
        if not token:
            break
    assert pages == 3 and len(seen) == len(set(seen)) == 13


@pytest.mark.parametrize("query", ["pageSize=-1", "pageSize=abc", "pageSize=100000", "pageToken=garbage",
                                   "pageToken=" + "x" * 129])
def test_paging_rejects_bad_parameters(api: Client, query: str) -> None:
    resp = api.call("GET", f"/v2/policies?{query}")
    assert resp.status == 400 and resp.json["code"] == 3


def test_paging_defaults_and_coercion(api: Client, capi: Client) -> None:
    api.call("POST", "/_emulator/seed", {"policies": [{"displayName": f"p{i}"} for i in range(100)]})
    assert len(api.call("GET", "/v2/policies").json["policies"]) == 100  # On-Prem default 100
    assert len(api.call("GET", "/v2/policies?pageSize=0").json["policies"]) == 100
    assert len(api.call("GET", "/v2/policies?pageSize=99999").json["policies"]) == 106  # coerced to max
    capi.call("POST", "/_emulator/seed", {"policies": [{"displayName": f"p{i}"} for i in range(60)]})
    first = capi.call("GET", "/v2/policies").json
    assert len(first["policies"]) == 50 and first["nextPageToken"]  # Cloud default 50
    # A token belongs to its query: reusing it with other filters is refused.
    assert capi.call("GET", f"/v2/policy-assignments?pageToken={first['nextPageToken']}").status == 400


# -- policies ---------------------------------------------------------------------------------------------------

def test_policy_create_get_delete(api: Client) -> None:
    created = api.call("POST", "/v2/policies", policy_body())
    assert created.status == 200
    policy = created.json["policy"]
    assert policy["uuid"] and "builtIn" not in policy  # false is left out, as protobuf JSON does
    assert api.call("GET", f"/v2/policies/{policy['uuid']}").json["policy"] == policy
    assert api.call("DELETE", f"/v2/policies/{policy['uuid']}").json == {}
    assert api.call("GET", f"/v2/policies/{policy['uuid']}").status == 404
    assert api.call("DELETE", f"/v2/policies/{policy['uuid']}").status == 404


def test_builtin_policies_are_protected(api: Client) -> None:
    builtins = [p for p in api.call("GET", "/v2/policies").json["policies"] if p.get("builtIn")]
    assert len(builtins) >= 4
    resp = api.call("DELETE", f"/v2/policies/{builtins[0]['uuid']}")
    assert resp.status == 403 and resp.json["code"] == 7
    sneaky = api.call("POST", "/v2/policies", policy_body(builtIn=True, uuid=builtins[0]["uuid"]))
    assert sneaky.status == 200 and sneaky.json["policy"]["uuid"] != builtins[0]["uuid"]
    assert "builtIn" not in sneaky.json["policy"]
    warnings = api.call("GET", "/_emulator/requests").json["requests"][-1]["warnings"]
    assert any("read-only" in w for w in warnings)


def test_builtin_policy_data_decodes_in_both_formats(api: Client) -> None:
    from emulator.policydata import check

    formats = {check(p["features"][0]["configuration"]["data"])["format"]
               for p in api.call("GET", "/v2/policies").json["policies"]}
    assert formats == {1, 2}


def test_protobuf_json_spellings_accepted(api: Client) -> None:
    body = policy_body()
    feature = body["policy"]["features"][0]
    feature["feature_id"] = str(feature.pop("featureId"))  # proto name, int64 as string
    body["policy"]["display_name"] = body["policy"].pop("displayName")
    body["policy"]["colour"] = "blue"
    resp = api.call("POST", "/v2/policies", body)
    assert resp.status == 200 and resp.json["policy"]["displayName"] == "Agent proxy"
    record = api.call("GET", "/_emulator/requests").json["requests"][-1]
    assert record["warnings"] == ["policy.colour: unknown field ignored"]


def _mutate(path: str, value: Any) -> Dict[str, Any]:
    body = policy_body()
    node: Any = body
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return body


BROKEN_AR = base64.b64encode(b'{"policy":{"format":2}}\n' + ar_archive([("a.lzma", b"not lzma")])).decode()
TRUNCATED_AR = base64.b64encode(b'{"policy":{"format":2}}\n' + ar_archive([("info.json", b"{}")])[:-3]).decode()


@pytest.mark.parametrize("body", [
    pytest.param(_mutate("policy", KeyError), id="no-policy"),
    pytest.param(_mutate("policy.displayName", KeyError), id="no-name"),
    pytest.param(_mutate("policy.displayName", 5), id="name-not-string"),
    pytest.param(_mutate("policy.features", []), id="no-features"),
    pytest.param(_mutate("policy.features", {}), id="features-not-list"),
    pytest.param(_mutate("policy.features.0.featureId", "abc"), id="feature-id-text"),
    pytest.param(_mutate("policy.features.0.featureId", 1.5), id="feature-id-float"),
    pytest.param(_mutate("policy.features.0.featureId", 7), id="feature-id-unknown"),
    pytest.param(_mutate("policy.features.0.featureId", KeyError), id="feature-id-missing"),
    pytest.param(_mutate("policy.features.0.flags", {"x": {"readOnly": "yes"}}), id="flag-not-bool"),
    pytest.param(_mutate("policy.features.0.configuration.@type", "type.googleapis.com/x.Y"), id="unknown-type"),
    pytest.param(_mutate("policy.features.0.configuration.@type", KeyError), id="no-type"),
    pytest.param(_mutate("policy.features.0.configuration.product", KeyError), id="no-product"),
    pytest.param(_mutate("policy.features.0.configuration.data", "not base64!"), id="data-not-base64"),
    pytest.param(_mutate("policy.features.0.configuration.data", base64.b64encode(b"hello").decode()),
                 id="data-not-policy"),
    pytest.param(_mutate("policy.features.0.configuration.data", BROKEN_AR), id="data-bad-lzma"),
    pytest.param(_mutate("policy.features.0.configuration.data", TRUNCATED_AR), id="data-truncated-ar"),
    pytest.param({"policy": {"displayName": "x", "displayName ": 1, "display_name": "y"}}, id="field-twice"),
])
def test_bad_policy_bodies_rejected(api: Client, body: Dict[str, Any]) -> None:
    before = len(api.call("GET", "/_emulator/state").json["policies"])
    resp = api.call("POST", "/v2/policies", body)
    assert resp.status == 400, resp.raw
    assert resp.json["code"] == 3 and resp.json["message"]
    assert len(api.call("GET", "/_emulator/state").json["policies"]) == before


def test_non_json_body_rejected(api: Client) -> None:
    assert api.call("POST", "/v2/policies", raw=b"<xml/>").status == 400
    assert api.call("POST", "/v2/policies", raw=b"").status == 400
    assert api.call("POST", "/v2/policies", raw=b"[]").status == 400


# -- assignments ------------------------------------------------------------------------------------------------

def _policies(api: Client, n: int) -> list:
    return [api.call("POST", "/v2/policies", policy_body(f"p{i}", format1("agent", {"a": {"ce_flags": 0}})))
            .json["policy"]["uuid"] for i in range(n)]


def _ranks(api: Client, group: str = SERVERS) -> list:
    items = api.call("GET", f"/v2/policy-assignments?target.deviceGroupUuid={group}").json["assignments"]
    return [(a["policyUuid"], a["rank"]) for a in items]


def test_assignments_append_rerank_and_unassign(api: Client) -> None:
    p1, p2, p3 = _policies(api, 3)
    made = [api.call("POST", "/v2/policy-assignments",
                     {"assignment": {"policyUuid": p, "target": {"deviceGroupUuid": SERVERS}}}) for p in (p1, p2, p3)]
    assert [m.json["assignment"]["rank"] for m in made] == [1, 2, 3]
    third = made[2].json["assignment"]["uuid"]
    zero = api.call("POST", f"/v2/policy-assignments/{third}:updateRanking", {"rank": 0})
    assert zero.status == 400
    assert api.call("POST", f"/v2/policy-assignments/{third}:updateRanking", {}).status == 400  # absent = 0
    beyond = api.call("POST", f"/v2/policy-assignments/{third}:updateRanking", {"rank": 4})
    assert beyond.status == 412 and beyond.json["code"] == 9
    assert api.call("POST", f"/v2/policy-assignments/{third}:updateRanking", {"rank": "1"}).json == {}
    assert _ranks(api) == [(p3, 1), (p1, 2), (p2, 3)]
    assert api.call("DELETE", f"/v2/policy-assignments/{made[0].json['assignment']['uuid']}").json == {}
    assert _ranks(api) == [(p3, 1), (p2, 2)]
    assert api.call("GET", f"/v2/policy-assignments/{made[0].json['assignment']['uuid']}").status == 404
    assert api.call("POST", "/v2/policy-assignments/nope:updateRanking", {"rank": 1}).status == 404


def test_assignment_targets_filters_and_refusals(api: Client) -> None:
    p1, p2 = _policies(api, 2)
    device = api.call("GET", "/v1/devices?displayNames=lnx-web-01").json["devices"][0]["uuid"]
    for body in ({"policyUuid": p1, "target": {"deviceGroupUuid": SERVERS}},
                 {"policyUuid": p2, "target": {"deviceGroupUuid": SERVERS}},
                 {"policyUuid": p1, "target": {"deviceUuid": device}}):
        assert api.call("POST", "/v2/policy-assignments", {"assignment": body}).status == 200
    assert len(api.call("GET", f"/v2/policy-assignments?policyUuid={p1}").json["assignments"]) == 2
    assert len(api.call("GET", f"/v2/policy-assignments?policyUuids={p1}&policyUuids={p2}")
               .json["assignments"]) == 3
    by_device = api.call("GET", f"/v2/policy-assignments?target.deviceUuid={device}").json["assignments"]
    assert [a["rank"] for a in by_device] == [1]
    cases = [({"policyUuid": "nope", "target": {"deviceGroupUuid": SERVERS}}, 404),
             ({"policyUuid": p1, "target": {"deviceGroupUuid": "nope"}}, 404),
             ({"policyUuid": p1, "target": {"subscriptionUuid": "nope"}}, 404),
             ({"policyUuid": p1, "target": {"deviceGroupUuid": SERVERS}}, 409),
             ({"policyUuid": p1, "target": {}}, 400),
             ({"policyUuid": p1, "target": {"deviceGroupUuid": SERVERS, "deviceUuid": device}}, 400),
             ({"target": {"deviceGroupUuid": SERVERS}}, 400)]
    for body, status in cases:
        assert api.call("POST", "/v2/policy-assignments", {"assignment": body}).status == status, body
    assert api.call("DELETE", f"/v2/policies/{p2}").status == 412  # assigned: unassign first


def test_device_group_tree_and_members(api: Client) -> None:
    groups = api.call("GET", "/v1/device_groups").json["deviceGroups"]
    by_uuid = {g["uuid"]: g for g in groups}

    def path(group: Dict[str, Any]) -> str:
        parent = by_uuid.get(group.get("parentGroupUuid", ""))
        return (path(parent) + "/" if parent else "") + group["displayName"]

    paths = {path(g) for g in groups}
    assert {"All", "All/Linux/Servers", "All/Windows/Laptops"} <= paths
    linux = group_uuid("All/Linux")
    assert api.call("GET", f"/v1/device_groups/{linux}/devices").json.get("devices", []) == []
    deep = api.call("GET", f"/v1/device_groups/{linux}/devices?recurseSubgroups=true").json
    assert deep["totalSize"] == 3 and {d["groupUuid"] for d in deep["devices"]} == {
        SERVERS, group_uuid("All/Linux/Workstations")}
    assert api.call("GET", "/v1/device_groups/nope/devices").status == 404
    assert api.call("GET", f"/v1/device_groups/{linux}/devices?recurseSubgroups=maybe").status == 400


# -- cloud specifics, faults --------------------------------------------------------------------------------------

def test_cloud_202_and_collection(capi: Client, cloud: Emulator) -> None:
    capi.call("POST", "/_emulator/faults", {"action": "accepted", "method": "POST", "path": "/v2/policies",
                                            "pending": 1})
    body = policy_body("slow")
    first = capi.call("POST", "/v2/policies", body)
    assert first.status == 202 and first.raw == b"" and first.headers["request-id"]
    rid = first.headers["response-id"]
    assert any(p["displayName"] == "slow" for p in cloud.state.snapshot()["policies"])  # the work was done
    assert capi.call("POST", "/v2/policies", policy_body("other"), headers={"response-id": rid}).status == 404
    again = capi.call("POST", "/v2/policies", body, headers={"response-id": rid})
    assert again.status == 202 and again.headers["response-id"] == rid  # still pending once
    done = capi.call("POST", "/v2/policies", body, headers={"response-id": rid})
    assert done.status == 200 and done.json["policy"]["displayName"] == "slow"
    assert capi.call("POST", "/v2/policies", body, headers={"response-id": rid}).status == 404  # collected
    assert capi.call("GET", "/v2/policies", headers={"response-id": "unknown"}).status == 404


def test_429_injection_then_success(api: Client) -> None:
    api.call("POST", "/_emulator/faults", {"status": 429, "path": "/v2/policies", "times": 2,
                                           "headers": {"Retry-After": "1"}})
    answers = [api.call("GET", "/v2/policies") for _ in range(3)]
    assert [a.status for a in answers] == [429, 429, 200]
    assert answers[0].raw == b"" and answers[0].headers["retry-after"] == "1" and answers[0].headers["request-id"]
    assert api.call("GET", "/_emulator/faults").json["faults"][0]["fired"] == 2


def test_nth_call_fails_and_close_drops_connection(api: Client) -> None:
    api.call("POST", "/_emulator/faults", {"method": "DELETE", "path": "/v2/policy-assignments/*", "nth": 2,
                                           "status": 503})
    api.call("POST", "/_emulator/faults", {"action": "close", "path": "/v1/devices"})
    assert api.call("DELETE", "/v2/policy-assignments/a").status == 404
    assert api.call("DELETE", "/v2/policy-assignments/b").status == 503
    assert api.call("DELETE", "/v2/policy-assignments/c").status == 404
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        api.call("GET", "/v1/devices")
    assert api.call("GET", "/v1/devices").status == 200


def test_real_rate_limit_per_token() -> None:
    with Emulator("cloud", rate_limit=3) as emu:
        client = Client(emu, "/device-management")
        client.token = cloud_login(emu)["access_token"]
        assert [client.call("GET", "/v1/devices").status for _ in range(4)] == [200, 200, 200, 429]


def test_recording_redacts_secrets(cloud: Emulator, onprem: Emulator) -> None:
    cloud.reset()
    tokens = cloud_login(cloud)
    Client(cloud, "/device-management").call("GET", "/v1/devices", token=tokens["access_token"])
    onprem.reset()
    Client(onprem).login()
    dumped = json.dumps(cloud.requests) + json.dumps(onprem.requests)
    for secret in (PASSWORD, tokens["access_token"], tokens["refresh_token"]):
        assert secret not in dumped
    login, listing = cloud.requests
    assert login["body"]["password"] == "***" and login["body"]["username"] == USER
    assert login["response"]["access_token"] == "***" and login["status"] == 200
    assert listing["headers"]["Authorization"] == "Bearer ***" and listing["user"] == USER
    assert listing["service"] == "device-management" and listing["api_path"] == "/v1/devices"
    assert onprem.requests[0]["body"]["password"] == "***"


def test_every_answer_has_request_id(api: Client) -> None:
    for method, path, status in (("GET", "/nope", 404), ("PUT", "/v2/policies", 405), ("GET", "/v2/policies", 200)):
        resp = api.call(method, path)
        assert resp.status == status and len(resp.headers["request-id"]) == 36
    ids = [r["request_id"] for r in api.call("GET", "/_emulator/requests").json["requests"]]
    assert len(ids) == len(set(ids))


def test_int64_as_string_option() -> None:
    with Emulator("onprem", int64_as_string=True, emit_unpopulated=True) as emu:
        client = Client(emu)
        client.login()
        policy = client.call("GET", "/v2/policies").json["policies"][0]
        assert policy["features"][0]["featureId"] == "4294967295"
        made = client.call("POST", "/v2/policies", policy_body()).json["policy"]
        assert made["builtIn"] is False
        assigned = client.call("POST", "/v2/policy-assignments", {"assignment": {
            "policyUuid": made["uuid"], "target": {"deviceGroupUuid": SERVERS}}}).json["assignment"]
        assert assigned["rank"] == "1"


# -- configuration ----------------------------------------------------------------------------------------------

def test_configuration_batch_get_values(api: Client) -> None:
    resp = api.call("POST", "/v2/configuration:batchGetValues", {"paths": ["server", "server.updates.trigger"]})
    assert resp.status == 200
    values = resp.json["values"]
    assert [v["path"] for v in values] == ["server", "server.updates.trigger"]
    assert values[0]["value"]["updates"]["trigger"] == values[1]["value"]
    assert api.call("POST", "/v2/configuration:batchGetValues", {"paths": ["server.nope"]}).status == 404
    assert api.call("POST", "/v2/configuration:batchGetValues", {"paths": []}).status == 400
    assert api.call("POST", "/v2/configuration:batchGetValues", {"paths": "server"}).status == 400


def test_configuration_write_path_only_when_configured(api: Client, cloud: Emulator) -> None:
    write = {"values": [{"path": "server.wakeOnLan.multicastAddresses", "value": ["239.1.2.3"]}]}
    assert api.call("POST", "/v2/configuration:batchSetValues", write).json == {}
    got = api.call("POST", "/v2/configuration:batchGetValues", {"paths": ["server.wakeOnLan"]}).json
    assert got["values"][0]["value"] == {"multicastAddresses": ["239.1.2.3"]}
    with Emulator("onprem") as plain:
        client = Client(plain)
        client.login()
        assert client.call("POST", "/v2/configuration:batchSetValues", write).status == 404
    with Emulator("onprem", onprem_version="13.0") as old:
        client = Client(old)
        client.login()
        assert client.call("POST", "/v2/configuration:batchGetValues", {"paths": ["server"]}).status == 404
    cloud.reset()
    token = cloud_login(cloud)["access_token"]
    assert Client(cloud, "/policy-management").call(
        "POST", "/v2/configuration:batchGetValues", {"paths": ["server"]}, token=token).status == 404


# -- control from other processes, CLI, state file -----------------------------------------------------------------

CONTROL_SCRIPT = textwrap.dedent("""
    import http.client, json, ssl, sys
    port, ca = int(sys.argv[1]), sys.argv[2]
    def call(method, path, body=None):
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ssl.create_default_context(cafile=ca))
        conn.request(method, path, json.dumps(body) if body is not None else None)
        resp = conn.getresponse()
        return json.loads(resp.read() or b"null")
    call("POST", "/_emulator/seed", {"groups": [{"displayName": "From subprocess",
                                                  "parentGroupUuid": sys.argv[3]}]})
    call("POST", "/_emulator/faults", {"status": 500, "path": "/v1/device_groups"})
    print(json.dumps(call("GET", "/_emulator/requests")))
""")


def test_control_api_from_another_process(api: Client, onprem: Emulator) -> None:
    api.call("GET", "/v2/policies")
    out = subprocess.run([sys.executable, "-c", CONTROL_SCRIPT, str(onprem.port), str(onprem.ca_path),
                          group_uuid("All")], capture_output=True, text=True, check=True, timeout=30)
    assert [r["api_path"] for r in json.loads(out.stdout)["requests"]][-1] == "/v2/policies"
    assert api.call("GET", "/v1/device_groups").status == 500
    names = [g["displayName"] for g in api.call("GET", "/v1/device_groups").json["deviceGroups"]]
    assert "From subprocess" in names


def test_cli_runs_until_sigterm_and_keeps_state(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    argv = [sys.executable, str(TESTS / "emulator" / "run.py"), "--deployment", "onprem", "--listen",
            "127.0.0.1:0", "--state-file", str(state_file), "--user", "ops:Secret-1", "--token-lifetime", "60"]
    for round_ in range(2):
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            ca = proc.stdout.readline().split(" ", 1)[1].strip()
            url = proc.stdout.readline().split(" ", 1)[1].strip()
            client = Client(None, port=urlsplit(url).port or 0, ca=ca)
            login = client.call("POST", "/GetTokens", {"username": "ops", "password": "Secret-1", "grant_type": 0})
            assert login.json["expiresIn"] == 60
            client.token = login.json["accessToken"]
            names = [p["displayName"] for p in client.call("GET", "/v2/policies").json["policies"]]
            if round_ == 0:
                assert "kept" not in names
                assert client.call("POST", "/v2/policies", policy_body("kept")).status == 200
            else:
                assert "kept" in names  # the state file carried it over the restart
        finally:
            proc.terminate()
            assert proc.wait(timeout=10) == 0
