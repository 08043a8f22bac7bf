"""The server half of wol_multicast against a fake API client, the settings map, and the verdict matrix."""
from __future__ import annotations

import typing as t

import pytest
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._errors import EsetApiError
from ansible_collections.protectnet.epns.plugins.module_utils._wol import _report, _server, _settings_map


class Options:
    deployment = "on_prem"


class FakeClient:
    def __init__(self, tree: t.Dict[str, t.Any], write_path: t.Optional[str] = None) -> None:
        self.options = Options()
        self.tree = tree
        self.write_path = write_path
        self.calls: t.List[t.Tuple[str, t.Any]] = []

    def request(self, method: str, service: str, path: str, query: t.Any = None, body: t.Any = None,
                idempotent: t.Any = None) -> t.Any:
        self.calls.append((path, body))
        if path == "/v2/configuration:batchGetValues":
            wanted = body["paths"][0]
            if wanted not in self.tree:
                raise EsetApiError(404, method, path, message="not found")
            return {"values": [{"path": wanted, "value": self.tree[wanted]}]}
        if path == self.write_path:
            for item in body["values"]:
                self.tree[item["path"]] = item["value"]
            return {}
        raise EsetApiError(404, method, path)


SMAP = _settings_map.merged(None)
PATH = SMAP["addresses_path"]


def test_the_data_file_says_no_write_call_is_known() -> None:
    assert _settings_map.SETTINGS_MAP["write_path"] is None
    assert _settings_map.SETTINGS_MAP["read_path"] == "/v2/configuration:batchGetValues"
    with pytest.raises(ValueError, match="unknown key"):
        _settings_map.merged({"wirte_path": "/x"})
    assert _settings_map.merged({"write_path": "/x"})["write_path"] == "/x"


def test_no_write_call_gives_action_required_with_the_exact_values() -> None:
    client = FakeClient({PATH: ["239.1.1.1"]})
    out = _server.apply(client, SMAP, ["239.255.0.9", "10.1.2.255"], check_mode=False)
    assert out["changed"] is False and out["applied"] is False and out["current"] == ["239.1.1.1"]
    required = out["action_required"]
    assert required["values"] == ["239.255.0.9", "10.1.2.255"] and "More > Settings" in required["where"]
    assert required["text"] == "239.255.0.9\n10.1.2.255"
    assert [c[0] for c in client.calls] == ["/v2/configuration:batchGetValues"]


def test_unknown_path_or_missing_read_call_is_not_an_error() -> None:
    out = _server.apply(FakeClient({}), SMAP, ["239.255.0.9"], check_mode=False)
    assert out["current"] is None and "HTTP 404" in out["read"] and out["action_required"]


def test_write_call_applies_reads_back_and_is_idempotent() -> None:
    settings_map = _settings_map.merged({"write_path": "/v2/configuration:batchSetValues"})
    client = FakeClient({}, "/v2/configuration:batchSetValues")
    check = _server.apply(client, settings_map, ["239.255.0.9"], check_mode=True)
    assert check["changed"] and not any(c[0].endswith("batchSetValues") for c in client.calls)
    done = _server.apply(client, settings_map, ["239.255.0.9"], check_mode=False)
    assert done["changed"] and done["applied"] and done["action_required"] is None
    assert client.tree[PATH] == ["239.255.0.9"]
    again = _server.apply(client, settings_map, ["239.255.0.9"], check_mode=False)
    assert again["in_sync"] and not again["changed"]


def test_a_write_path_the_server_lacks_falls_back_to_action_required() -> None:
    settings_map = _settings_map.merged({"write_path": "/v9/nope"})
    out = _server.apply(FakeClient({PATH: []}), settings_map, ["239.255.0.9"], check_mode=False)
    assert out["action_required"] and "does not offer the write call /v9/nope" in out["action_required"]["reason"]


def test_other_api_errors_propagate() -> None:
    class Broken(FakeClient):
        def request(self, *a: t.Any, **k: t.Any) -> t.Any:
            raise EsetApiError(500, "POST", "/v2/configuration:batchGetValues")
    with pytest.raises(EsetApiError):
        _server.apply(Broken({}), SMAP, ["239.255.0.9"], check_mode=False)


DESTS = [{"address": "239.255.0.9", "kind": "ipv4_multicast", "subnet": None},
         {"address": "10.1.2.255", "kind": "directed_broadcast", "subnet": "10.1.2.0/24"},
         {"address": "10.1.3.255", "kind": "directed_broadcast", "subnet": "10.1.3.0/24"}]
SENDS = [{"address": "239.255.0.9", "ok": True, "sent": 3, "first_sent_ms": 1000, "failure": None},
         {"address": "10.1.2.255", "ok": True, "sent": 3, "first_sent_ms": 1000, "failure": None},
         {"address": "10.1.3.255", "ok": False, "sent": 0, "first_sent_ms": None,
          "failure": {"class": "server_firewall", "message": "the sending host's own egress firewall dropped it"}}]


def test_matrix_says_why_for_every_cell() -> None:
    agents = {
        "a1": {"addresses": ["10.1.2.11/24"], "arrivals": [
            {"destination": "239.255.0.9", "source": "10.1.0.5", "at": "T", "at_ms": 1004, "secureon_ok": True},
            {"destination": "10.1.2.255", "source": "10.1.0.5", "at": "T", "at_ms": 1002, "secureon_ok": True}]},
        "a2": {"addresses": ["10.1.3.11/24"], "arrivals": []},
        "a3": {"failed": True, "msg": "cannot listen on UDP port 9: in use"},
    }
    got = _report.matrix(DESTS, SENDS, agents)
    status = {d: {a: c["status"] for a, c in row.items()} for d, row in got["cells"].items()}
    assert status == {"239.255.0.9": {"a1": "arrived", "a2": "not_delivered", "a3": "no_listener"},
                      "10.1.2.255": {"a1": "arrived", "a2": "not_applicable", "a3": "no_listener"},
                      "10.1.3.255": {"a1": "not_applicable", "a2": "not_sent", "a3": "no_listener"}}
    assert got["cells"]["239.255.0.9"]["a1"]["latency_ms"] == 4
    assert got["cells"]["10.1.3.255"]["a2"]["failure_class"] == "server_firewall"
    section = got["section"]
    assert section["title"] == "Wake-on-LAN" and section["table"]["columns"] == ["destination", "a1", "a2", "a3"]
    assert section["table"]["rows"][1][0] == "10.1.2.255 (10.1.2.0/24)"
    assert "2 of 7 expected deliveries arrived" in section["text"]
    no_fwd = _report.cell(DESTS[1], SENDS[1], {"addresses": ["10.1.2.12/24"], "arrivals": []})
    assert no_fwd["status"] == "not_forwarded" and "does not forward directed broadcasts" in no_fwd["reason"]


class Refusing(FakeClient):
    """A server that answers the (unconfirmed) read call with ``status`` and a body of its own."""

    def __init__(self, status: int, body: str = "") -> None:
        super().__init__({})
        self.status, self.body = status, body

    def request(self, method: str, service: str, path: str, query: t.Any = None, body: t.Any = None,
                idempotent: t.Any = None) -> t.Any:
        raise EsetApiError(self.status, method, "https://protect.lab:9443" + path, self.body, "rid-42")


@pytest.mark.parametrize("status", [400, 404, 405, 501])
def test_a_refused_read_returns_action_required_with_the_servers_answer(status: int) -> None:
    client = Refusing(status, '{"code": 3, "message": "unknown configuration path"}')
    out = _server.apply(client, SMAP, ["239.255.0.9", "10.1.2.255"], check_mode=False)
    assert out["applied"] is False and out["changed"] is False and out["current"] is None
    assert out["read_error"]["status"] == status and out["read_error"]["request_id"] == "rid-42"
    assert "unknown configuration path" in out["read_error"]["body"]
    required = out["action_required"]
    assert required["values"] == ["239.255.0.9", "10.1.2.255"] and required["text"] == "239.255.0.9\n10.1.2.255"
    assert f"HTTP {status}" in required["reason"] and "unknown configuration path" in required["reason"]
    assert required["setting"] == PATH and "More > Settings" in required["where"]


def test_a_403_names_the_missing_permission() -> None:
    with pytest.raises(_server.PermissionMissing) as info:
        _server.apply(Refusing(403), SMAP, ["239.255.0.9"], check_mode=False)
    text = str(info.value)
    assert "HTTP 403" in text and "lacks the permission" in text and "Server Settings" in text and "Read" in text
    assert info.value.action_required["values"] == ["239.255.0.9"]


def test_a_403_on_the_write_names_the_write_permission() -> None:
    class ReadOnly(FakeClient):
        def request(self, method: str, service: str, path: str, query: t.Any = None, body: t.Any = None,
                    idempotent: t.Any = None) -> t.Any:
            if path == "/w":
                raise EsetApiError(403, method, path, "", "rid-7")
            return super().request(method, service, path, query, body)

    with pytest.raises(_server.PermissionMissing) as info:
        _server.apply(ReadOnly({PATH: []}), _settings_map.merged({"write_path": "/w"}), ["239.255.0.9"], False)
    assert "Write" in str(info.value) and "Server Settings" in str(info.value)
