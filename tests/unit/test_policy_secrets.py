"""Settings that hold secrets are masked (issue 12): in eset_policy_info results, in agent_proxy_policy diffs and
in errors, unless ``reveal_secrets`` asks for them. A leaf is secret by its node name or type, by its value (a
private key), or because it sits in an opaque format 2 member (``userData``, ``originalPolicies``) whatever its
name: the policy below hides one secret under the innocent name ``Note`` inside ``userData`` and one under
``Comment`` inside a policy carried in ``originalPolicies``."""
from __future__ import annotations

import typing as t

import pytest
from _fake_eset import FakeEset, Fault
from _module_run import ModuleRun
from _policy_vectors import ar, b64, compact, format1, lzma_alone
from ansible_collections.protectnet.epns.plugins.module_utils._eset_policy import _codec as codec
from ansible_collections.protectnet.epns.plugins.modules import agent_proxy_policy, eset_policy_info
from test_agent_proxy_logic import args, world

NAMED = "Named-S3cret-55"
TYPED = "Typed-S3cret-44"
OPAQUE = "Opaque-S3cret-77"
NESTED = "Nested-S3cret-99"
PEM = "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA\n-----END PRIVATE KEY-----"
SECRETS = (NAMED, TYPED, OPAQUE, NESTED, "MIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA")
SETTINGS_MAP = {"section": "agent_vector", "proxy_mode": {"path": "Settings/Proxy/Mode"},
                "fallback_direct": {"path": "Settings/Proxy/Direct"},
                "services": {"global": {"use": {"path": "Settings/Proxy/Use", "ce_type": 6},
                                        "host": {"path": "Settings/Proxy/Host"},
                                        "port": {"path": "Settings/Proxy/Port"}}}}


def leaf(value: t.Any, ce_type: t.Any = 1) -> t.Dict[str, t.Any]:
    return {"ce_flags": 4, "ce_type": ce_type, "ce_value": value}


def secret_policy() -> bytes:
    settings = {"ce_flags": 0, "Proxy": {"ce_flags": 0, "Host": leaf("old.lab"), "ProxyPassword": leaf(NAMED),
                                         "Hint": leaf(TYPED, "password")},
                "Tls": {"ce_flags": 0, "ClientCert": leaf(PEM)},
                "Logging": {"ce_flags": 0, "Verbosity": leaf(3, 2)}}
    product = compact({"policy": {"product": "agent_vector", "version": "1.0", "data": {"Settings": settings}}})
    user = compact({"policy": {"version": "1.0", "data": {"Settings": {"ce_flags": 0, "Note": leaf(OPAQUE)}}}})
    inner = b64(format1("endpoint", {"ce_flags": 0, "Comment": leaf(NESTED)}))
    members = [("agent_vector.lzma", lzma_alone(product)), ("userData.lzma", lzma_alone(user)),
               ("originalPolicies.lzma", lzma_alone(inner.encode())), ("info.json", b'{"written_by_ce":"vector"}')]
    return compact({"policy": {"format": 2}}) + b"\n" + ar(members)


@pytest.fixture
def run(run_module: ModuleRun) -> ModuleRun:
    run_module.diff = True
    return run_module


@pytest.fixture
def fake() -> t.Iterator[FakeEset]:
    with FakeEset(deployment="on_prem") as running:
        yield running


def shown(run: ModuleRun) -> str:
    return "\n".join(run.outputs)


def test_the_codec_masks_by_name_type_value_and_opaque_member() -> None:
    data = codec.PolicyData(secret_policy())
    flat = codec.flatten(codec.masked_sections(data))
    assert flat["agent_vector/Settings/Proxy/ProxyPassword"] == codec.MASK
    assert flat["agent_vector/Settings/Proxy/Hint"] == codec.MASK
    assert flat["agent_vector/Settings/Tls/ClientCert"] == codec.MASK
    assert flat["userData/Settings/Note"] == codec.MASK
    assert flat["agent_vector/Settings/Proxy/Host"] == "old.lab"
    assert flat["agent_vector/Settings/Logging/Verbosity"] == "3"
    assert codec.flatten(data.sections())["userData/Settings/Note"] == OPAQUE  # the data itself is untouched
    assert codec.secret_values(data) >= {NAMED, TYPED, OPAQUE, NESTED, PEM}
    (inner,) = data.nested()
    assert codec.flatten(codec.masked_sections(inner, opaque=True)) == {"endpoint/Comment": codec.MASK}


def test_eset_policy_info_masks_secrets_unless_revealed(fake: FakeEset, run: ModuleRun) -> None:
    fake.add_policy("Agent (console)", "eset.local.products.agent", b64(secret_policy()))
    result = run(eset_policy_info, fake.params(name="Agent (console)", include_nested=True))
    (policy,) = result["policies"]
    assert policy["settings_flat"]["userData/Settings/Note"] == codec.MASK
    assert policy["settings_flat"]["agent_vector/Settings/Proxy/Host"] == "old.lab"
    assert policy["nested"][0]["settings_flat"] == {"endpoint/Comment": codec.MASK}
    assert policy["secrets_masked"] is True
    assert not [s for s in SECRETS if s in shown(run)]
    revealed = run(eset_policy_info, fake.params(name="Agent (console)", include_nested=True, reveal_secrets=True))
    (policy,) = revealed["policies"]
    assert policy["settings_flat"]["userData/Settings/Note"] == OPAQUE and policy["secrets_masked"] is False
    assert policy["nested"][0]["settings_flat"] == {"endpoint/Comment": NESTED}


def test_agent_proxy_policy_masks_secrets_in_its_diff_and_errors(fake: FakeEset, run: ModuleRun) -> None:
    world(fake)
    fake.add_policy("Agent proxy (console)", "eset.real.agent.id", b64(secret_policy()))
    options = dict(template_policy="Agent proxy (console)", settings_map=SETTINGS_MAP)
    result = run(agent_proxy_policy, args(fake, **options))
    assert result["changed"] is True
    (after,) = result["diff"]["after"]["policies"]
    assert after["settings"]["userData/Settings/Note"] == codec.MASK
    assert after["settings"]["agent_vector/Settings/Proxy/ProxyPassword"] == codec.MASK
    # A server that echoes the policy it refused: the error must not carry the secret either.
    fake.faults.append(Fault("POST", "/v2/policies", 400, body=f'{{"message": "bad value {OPAQUE} at Note"}}'))
    failed = run(agent_proxy_policy, args(fake, proxy_host="new.lab", **options))
    assert failed.get("failed") is True and "bad value" in failed["msg"]
    assert not [s for s in SECRETS if s in shown(run)]
    revealed = run(agent_proxy_policy, args(fake, proxy_host="new.lab", reveal_secrets=True, **options))
    (after,) = revealed["diff"]["after"]["policies"]
    assert after["settings"]["userData/Settings/Note"] == OPAQUE


@pytest.mark.parametrize("name", ["ProxyPassword", "password", "api_key", "ApiKey", "PrivateKey", "AuthToken",
                                  "client-secret", "Passphrase", "LicenseKey", "SMTP_PWD", "Credentials"])
def test_names_that_mark_a_secret(name: str) -> None:
    assert codec.is_secret_name(name)


@pytest.mark.parametrize("name", ["Host", "Port", "KeepAlive", "Keyboard", "Bypass", "Passive", "Monkey", "Note",
                                  "Comment", "Verbosity", 2, None])
def test_names_that_do_not(name: t.Any) -> None:
    assert not codec.is_secret_name(name)
