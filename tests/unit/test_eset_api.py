"""The ESET PROTECT API client against a loopback fake: logins, token lifetime, retries, pages, 202, TLS, errors."""
from __future__ import annotations

import json
import shutil
import typing as t
from pathlib import Path

import pytest
from _fake_eset import PASSWORD, FakeEset, Fault
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api import _client
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._client import (
    BACKOFF_CAP,
    RETRY_AFTER_CAP,
    ConnectionOptions,
    EsetClient,
)
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._endpoints import Endpoints
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._errors import (
    EsetApiError,
    EsetConfigError,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: t.List[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def client(fake: FakeEset, clock: t.Optional[Clock] = None, warnings: t.Optional[list] = None,
           **extra: t.Any) -> EsetClient:
    clock = clock or Clock()
    params = fake.params(**extra)
    return EsetClient(ConnectionOptions.from_params(params), sleep=clock.sleep, clock=clock,
                      warn=(warnings.append if warnings is not None else None), jitter=lambda: 1.0)


@pytest.fixture(params=["on_prem", "cloud"])
def fake(request: pytest.FixtureRequest) -> t.Iterator[FakeEset]:
    with FakeEset(deployment=request.param) as running:
        yield running


def test_login_and_list(fake: FakeEset) -> None:
    fake.add_policy("p", "prod", "e30=")
    api = client(fake)
    assert [p["displayName"] for p in api.paginate("policy-management", "/v2/policies", "policies")] == ["p"]
    login = fake.requests[0]
    if fake.deployment == "on_prem":
        assert login.path == "/GetTokens" and json.loads(login.body) == {"username": "api-user",
                                                                         "password": PASSWORD, "grant_type": 0}
    else:
        assert login.path == "/oauth/token" and "grant_type=password" in login.body
        assert login.headers["content-type"] == "application/x-www-form-urlencoded"
    assert fake.requests[1].headers["authorization"].startswith("Bearer tok-")
    assert api.tokens.logins == 1


def test_pagination_follows_next_page_token(fake: FakeEset) -> None:
    for i in range(8):
        fake.add_policy(f"p{i}", "prod", "e30=")
    api = client(fake)
    names = [p["displayName"] for p in api.paginate("policy-management", "/v2/policies", "policies")]
    assert names == [f"p{i}" for i in range(8)]
    pages = [r for r in fake.requests if r.path == "/v2/policies"]
    assert len(pages) == 3 and pages[1].query["pageToken"] == ["3"]


def test_a_repeated_page_token_is_an_error(fake: FakeEset) -> None:
    fake.faults.append(Fault("GET", "/v2/policies", 200, times=5, body=json.dumps(
        {"policies": [{}], "nextPageToken": "same"})))
    with pytest.raises(EsetApiError, match="repeated page token"):
        client(fake).paginate("policy-management", "/v2/policies", "policies")


def test_token_is_renewed_before_it_expires(fake: FakeEset) -> None:
    clock = Clock()
    api = client(fake, clock)
    api.request("GET", "policy-management", "/v2/policies")
    clock.now += 3600 - 59  # inside the 60 s margin of a one-hour token
    api.request("GET", "policy-management", "/v2/policies")
    auth = [r for r in fake.requests if r.path in ("/GetTokens", "/oauth/token")]
    assert len(auth) == 2
    if fake.deployment == "cloud":
        assert "grant_type=refresh_token" in auth[1].body and api.tokens.refreshes == 1
    else:
        assert api.tokens.logins == 2
    assert api.stats.reauthentications == 0


def test_a_401_renews_the_token_once(fake: FakeEset) -> None:
    api = client(fake)
    api.request("GET", "policy-management", "/v2/policies")
    fake.expire_all_tokens()  # the server forgot the token mid-run
    api.request("GET", "policy-management", "/v2/policies")
    assert api.stats.reauthentications == 1


def test_a_second_401_is_an_error(fake: FakeEset) -> None:
    fake.faults.append(Fault("GET", "/v2/policies", 401, times=2, body='{"message":"nope"}'))
    with pytest.raises(EsetApiError) as info:
        client(fake).request("GET", "policy-management", "/v2/policies")
    assert info.value.status == 401 and "even after logging in again" in str(info.value)


def test_a_cloud_refresh_that_is_refused_logs_in_again() -> None:
    with FakeEset(deployment="cloud") as fake:
        clock = Clock()
        api = client(fake, clock)
        api.request("GET", "policy-management", "/v2/policies")
        fake.refresh_tokens.clear()
        clock.now += 4000
        api.request("GET", "policy-management", "/v2/policies")
        assert api.tokens.logins == 2


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_transient_statuses_are_retried_with_capped_backoff(fake: FakeEset, status: int) -> None:
    fake.faults.append(Fault("GET", "/v2/policies", status, times=4))
    clock = Clock()
    api = client(fake, clock, retries=6)
    assert api.request("GET", "policy-management", "/v2/policies") == {"policies": [], "nextPageToken": ""}
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0]
    assert api.stats.retries == 4


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_create_is_not_retried_blindly_after_an_answer_that_may_follow_the_change(fake: FakeEset,
                                                                                    status: int) -> None:
    fake.faults.append(Fault("POST", "/v2/policies", status, times=1))
    clock = Clock()
    with pytest.raises(EsetApiError) as info:
        client(fake, clock, retries=6).request("POST", "policy-management", "/v2/policies", body={"policy": {}})
    assert info.value.status == status and info.value.outcome_unknown is True
    assert [r.method for r in fake.requests if r.path == "/v2/policies"] == ["POST"] and clock.sleeps == []


def test_a_create_is_retried_after_a_429_and_a_set_call_after_a_502(fake: FakeEset) -> None:
    fake.faults.append(Fault("POST", "/v2/policies", 429, times=2))
    fake.faults.append(Fault("POST", "/v2/configuration:batchGetValues", 502, times=1))
    clock = Clock()
    api = client(fake, clock, retries=6)
    body = {"policy": {"displayName": "p", "features": [{"configuration": {"product": "x", "data": "e30="}}]}}
    api.request("POST", "policy-management", "/v2/policies", body=body)  # a 429 says nothing was done
    assert len([r for r in fake.requests if r.path == "/v2/policies"]) == 3 and len(fake.policies) == 1
    with pytest.raises(EsetApiError):
        api.request("POST", "policy-management", "/v2/configuration:batchGetValues", body={}, idempotent=True)
    assert len([r for r in fake.requests if r.path == "/v2/configuration:batchGetValues"]) == 2


def test_a_create_without_an_answer_is_not_retried() -> None:
    with FakeEset() as fake:
        params = fake.params(retries=3)
        api = EsetClient(ConnectionOptions.from_params(params), sleep=lambda s: None)
        api.tokens.token()
    sleeps: t.List[float] = []
    api._sleep = sleeps.append  # the fake is gone: connections are refused, so the request never left
    with pytest.raises(EsetApiError) as info:
        api.request("POST", "policy-management", "/v2/policies", body={"policy": {}})
    assert info.value.status is None and info.value.never_sent is True and len(sleeps) == 3


def test_backoff_is_capped_and_retry_after_is_honoured(fake: FakeEset) -> None:
    fake.faults.append(Fault("GET", "/v2/policies", 429, times=8))
    fake.faults.append(Fault("GET", "/v2/policies", 429, times=2, headers={"Retry-After": "7"}))
    fake.faults.append(Fault("GET", "/v2/policies", 429, times=1, headers={"Retry-After": "3600"}))
    clock = Clock()
    api = client(fake, clock, retries=20)
    api.request("GET", "policy-management", "/v2/policies")
    assert max(clock.sleeps[:8]) == BACKOFF_CAP
    assert clock.sleeps[8:] == [7.0, 7.0, RETRY_AFTER_CAP]


def test_a_429_storm_beyond_the_bound_fails_with_the_status(fake: FakeEset) -> None:
    fake.faults.append(Fault("GET", "/v2/policies", 429, times=100, body="slow down"))
    clock = Clock()
    with pytest.raises(EsetApiError) as info:
        client(fake, clock, retries=3).request("GET", "policy-management", "/v2/policies")
    assert info.value.status == 429 and len(clock.sleeps) == 3
    assert "still rate-limited after 3 retries" in str(info.value) and "slow down" in str(info.value)


def test_202_is_collected_with_the_response_id(fake: FakeEset) -> None:
    fake.add_policy("late", "prod", "e30=")
    fake.answer_202.append("/v2/policies")
    api = client(fake)
    answer = api.request("GET", "policy-management", "/v2/policies")
    assert [p["displayName"] for p in answer["policies"]] == ["late"]
    first, second = [r for r in fake.requests if r.path == "/v2/policies"]
    assert "response-id" not in first.headers and second.headers["response-id"]
    assert api.stats.collected_202 == 1


def test_a_cloud_202_without_response_id_is_an_error() -> None:
    with FakeEset(deployment="cloud") as fake:
        fake.faults.append(Fault("GET", "/v2/policies", 202))
        with pytest.raises(EsetApiError, match="202 without a response-id"):
            client(fake).request("GET", "policy-management", "/v2/policies")


def test_errors_name_status_call_body_and_request_id_but_no_secret(fake: FakeEset) -> None:
    api = client(fake)
    api.request("GET", "policy-management", "/v2/policies")
    token = fake.requests[-1].headers["authorization"][7:]
    fake.faults.append(Fault("POST", "/v2/policies", 400, body=json.dumps(
        {"message": f"bad data for {PASSWORD} with {token}"})))
    with pytest.raises(EsetApiError) as info:
        api.request("POST", "policy-management", "/v2/policies", body={"policy": {}})
    text = str(info.value)
    assert text.startswith(f"POST {fake.url}/v2/policies failed: HTTP 400")
    assert "request-id: " in text and "request-id: none" not in text and "bad data for" in text
    assert PASSWORD not in text and token not in text
    assert PASSWORD not in json.dumps(info.value.to_dict())


def test_a_failed_login_names_the_call_without_the_password(fake: FakeEset) -> None:
    with pytest.raises(EsetApiError) as info:
        client(fake, password="Wrong-Pass-1234").request("GET", "policy-management", "/v2/policies")
    assert info.value.status in (400, 401) and "login to ESET PROTECT failed" in str(info.value)
    assert "Wrong-Pass-1234" not in str(info.value)


def test_no_answer_is_an_error_without_status() -> None:
    with FakeEset() as fake:
        url = fake.url
    api = EsetClient(ConnectionOptions.from_params({"deployment": "on_prem", "username": "u", "password": PASSWORD,
                                                     "api_urls": {"default": url}, "retries": 1}),
                     sleep=lambda s: None)
    with pytest.raises(EsetApiError) as info:
        api.request("GET", "policy-management", "/v2/policies")
    assert info.value.status is None and "connection failed" in str(info.value)


def test_tls_is_verified_by_default(pki: t.Any) -> None:
    with FakeEset(certfile=str(pki.server_cert), keyfile=str(pki.server_key)) as fake:
        port = fake.server.server_address[1]
        base = {"deployment": "on_prem", "server": "127.0.0.1", "port": port, "username": "api-user",
                "password": PASSWORD, "retries": 0}
        with pytest.raises(EsetApiError) as info:
            EsetClient(ConnectionOptions.from_params(base)).request("GET", "policy-management", "/v2/policies")
        assert "give ca_path" in str(info.value)
        trusted = EsetClient(ConnectionOptions.from_params(dict(base, ca_path=str(pki.ca))))
        assert trusted.request("GET", "policy-management", "/v2/policies")["policies"] == []
        warnings: t.List[str] = []
        unverified = EsetClient(ConnectionOptions.from_params(dict(base, validate_certs=False)), warn=warnings.append)
        assert unverified.request("GET", "policy-management", "/v2/policies")["policies"] == []
        assert len(warnings) == 1 and "not verified" in warnings[0]


def test_an_untrusted_certificate_is_not_retried(pki: t.Any) -> None:
    """A certificate that fails verification fails the same way every time: no retry, no backoff."""
    with FakeEset(certfile=str(pki.server_cert), keyfile=str(pki.server_key)) as fake:
        slept: t.List[float] = []
        api = EsetClient(ConnectionOptions.from_params({
            "deployment": "on_prem", "server": "127.0.0.1", "port": fake.server.server_address[1],
            "username": "api-user", "password": PASSWORD, "retries": 6}), sleep=slept.append)
        with pytest.raises(EsetApiError) as info:
            api.request("GET", "policy-management", "/v2/policies")
    assert "give ca_path" in str(info.value)
    assert (api.stats.requests, api.stats.retries, slept) == (1, 0, [])


def test_endpoints_per_deployment() -> None:
    cloud = Endpoints("cloud", region="de")
    assert cloud.base("policy-management") == "https://de.policy-management.eset.systems"
    assert cloud.base("device-management") == "https://de.device-management.eset.systems"
    assert cloud.token_url() == "https://de.business-account.iam.eset.systems/oauth/token"
    onprem = Endpoints("on_prem", server="protect.example.com")
    assert onprem.base("policy-management") == "https://protect.example.com:9443"
    assert onprem.token_url() == "https://protect.example.com:9443/GetTokens"
    assert Endpoints("on_prem", server="fd00::1", port=8443).origin == "https://[fd00::1]:8443"
    assert Endpoints("on_prem", server="[fd00::1]", port=8443).origin == "https://[fd00::1]:8443"
    mixed = Endpoints("cloud", region="us", api_urls={"policy-management": "https://127.0.0.1:1/pm/"})
    assert mixed.base("policy-management") == "https://127.0.0.1:1/pm"
    assert mixed.base("device-management") == "https://us.device-management.eset.systems"


@pytest.mark.parametrize(("args", "words"), [
    ({"deployment": "on_prem"}, "needs server"),
    ({"deployment": "cloud"}, "needs region"),
    ({"deployment": "cloud", "region": "mars"}, "region 'mars' is not one of"),
    ({"deployment": "on_prem", "server": "https://x"}, "host name or address"),
    ({"deployment": "on_prem", "server": "protect.example.com:9443"}, "write it without a port; set port"),
    ({"deployment": "on_prem", "server": "protect example"}, "server: 'protect example' is not a valid host name"),
    ({"deployment": "on_prem", "server": "x", "port": 0}, "not a TCP port"),
    ({"deployment": "on_prem", "api_urls": {"policy": "https://x"}}, "unknown service 'policy'"),
    ({"deployment": "on_prem", "api_urls": {"default": "ftp://x"}}, r"not an http\(s\) URL"),
    ({"deployment": "on_prem", "api_urls": {"default": "https://u:p@x"}}, "must not carry credentials"),
    ({"deployment": "on_prem", "api_urls": {"default": "https://x/?a=1"}}, "query or fragment"),
    ({"deployment": "moon"}, "deployment must be one of"),
])
def test_bad_connection_settings(args: dict, words: str) -> None:
    with pytest.raises(EsetConfigError, match=words):
        Endpoints(args["deployment"], args.get("server"), args.get("port", 9443), args.get("region"),
                  args.get("api_urls"))


class RequestWithoutContext:
    """ansible.module_utils.urls.Request as ansible-core 2.16 has it: no `context` argument (2.17 added it)."""

    made: t.ClassVar[t.List[t.Dict[str, t.Any]]] = []

    def __init__(self, *, timeout: float, validate_certs: bool, http_agent: str, follow_redirects: str,
                 use_netrc: bool, ca_path: t.Optional[str] = None) -> None:
        self.made.append({"validate_certs": validate_certs, "ca_path": ca_path})


def test_ansible_core_216_request_gets_the_ca_file(pki: t.Any, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_client, "Request", RequestWithoutContext)
    monkeypatch.setattr(RequestWithoutContext, "made", [])
    base = {"deployment": "on_prem", "server": "127.0.0.1", "username": "api-user", "password": PASSWORD}
    EsetClient(ConnectionOptions.from_params(dict(base, ca_path=str(pki.ca))))
    EsetClient(ConnectionOptions.from_params(base))
    assert RequestWithoutContext.made == [{"validate_certs": True, "ca_path": str(pki.ca)},
                                          {"validate_certs": True, "ca_path": None}]
    shutil.copy(pki.ca, tmp_path / "ca.pem")
    with pytest.raises(EsetConfigError) as info:
        EsetClient(ConnectionOptions.from_params(dict(base, ca_path=str(tmp_path))))
    assert "is a directory: ansible-core 2.16 on the controller needs a CA file" in str(info.value)
