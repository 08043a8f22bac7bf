"""The epns_probe module as Ansible runs it: options in, one JSON document out, never a traceback."""
from __future__ import annotations

import json
import typing as t

import pytest
from _module_run import ModuleRun
from ansible_collections.protectnet.epns.plugins.modules import epns_probe


@pytest.mark.parametrize(("args", "words"), [
    ({"proxies": ["http://agent:s3cret@proxy.lab:3128"]}, "does not support proxy authentication"),
    ({"proxies": ["https://proxy.lab:3128"]}, "'https://proxy.lab:3128' uses scheme 'https'"),
    ({"proxies": ["http://proxy.lab"]}, "'http://proxy.lab' has no port"),
    ({"timeout": "soon"}, "timeout"),
    ({"timeout": 0}, "timeout: 0.0 is out of range"),
    ({"primary_port": 70000}, "primary_port: 70000 is not a TCP port"),
    ({"address_family": "ipv5"}, "address_family"),
    ({"fail_on": "always"}, "fail_on"),
    ({"hold_seconds": 30}, "must be less than timeout"),
    ({"mqtt_client_id": "a client id that is far too long"}, "mqtt_client_id"),
    ({"client_key": "/tmp/x.key"}, "client_key"),
    ({"bogus": 1}, "bogus"),
])
def test_bad_options_fail_cleanly(args: dict, words: str, run_module: ModuleRun) -> None:
    result = run_module(epns_probe, args)
    assert result["failed"] is True
    assert words in result["msg"], result["msg"]
    assert "Traceback" not in json.dumps(result)


def test_proxy_password_is_not_echoed(run_module: ModuleRun) -> None:
    result = run_module(epns_probe, {"proxies": ["http://agent:s3cret@proxy.lab:3128"]})
    assert "s3cret" not in json.dumps(result)


def probe_args(lo: t.Any, pki: t.Any, **extra: t.Any) -> dict:
    args = {"host": "127.0.0.1", "server_name": "epns.eset.com", "ca_path": str(pki.ca),
            "primary_port": lo.free_port(), "fallback_port": lo.free_port(), "timeout": 2}
    args.update(extra)
    return args


@pytest.mark.parametrize(("fail_on", "failed"), [("unreachable", True), ("never", False)])
def test_fail_on_returns_the_full_result(lo: t.Any, pki: t.Any, run_module: ModuleRun, fail_on: str,
                                         failed: bool) -> None:
    result = run_module(epns_probe, probe_args(lo, pki, fail_on=fail_on))
    assert result.get("failed", False) is failed
    assert result["changed"] is False and result["verdict"] == "unreachable"
    assert len(result["paths"]) == 2
    if failed:
        assert result["msg"].startswith("EPNS is unreachable: No path reaches EPNS")


def test_degraded_and_check_mode(lo: t.Any, pki: t.Any, servers: list, run_module: ModuleRun) -> None:
    broker = lo.LoopbackServer(lo.mqtt_broker(), lo.tls_server_context(pki.server_cert, pki.server_key))
    servers.append(broker)
    args = probe_args(lo, pki, fallback_port=broker.port, _ansible_check_mode=True)
    result = run_module(epns_probe, args)
    assert "failed" not in result and result["changed"] is False
    assert result["verdict"] == "degraded" and result["working_fallback"] == f"{broker.port} direct"
    args["fail_on"] = "degraded"
    result = run_module(epns_probe, args)
    assert result["failed"] is True and result["verdict"] == "degraded"


def test_documentation_matches_argument_spec() -> None:
    import yaml
    from ansible_collections.protectnet.epns.plugins.doc_fragments._probe_server import ModuleDocFragment

    doc = yaml.safe_load(epns_probe.DOCUMENTATION)
    assert "protectnet.epns._probe_server" in doc["extends_documentation_fragment"]
    doc["options"].update(yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"])
    spec = epns_probe.argument_spec()
    assert set(doc["options"]) == set(spec)
    for name, option in doc["options"].items():
        assert option["type"] == spec[name]["type"], name
        assert option.get("default") == spec[name].get("default"), name
        assert option.get("choices") == spec[name].get("choices"), name
        assert option.get("elements") == spec[name].get("elements"), name
    yaml.safe_load(epns_probe.EXAMPLES)
    yaml.safe_load(epns_probe.RETURN)
