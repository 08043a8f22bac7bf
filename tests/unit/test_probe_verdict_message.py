"""The message of a host failed for its verdict: the verdict, the path and stage that break, and the fix."""
from __future__ import annotations

import pytest
from ansible_collections.protectnet.epns.plugins.module_utils import _epns as E
from ansible_collections.protectnet.epns.plugins.module_utils._probe import _classify as C


def _path(pid: str, role: str, cls: str | None, stage: str = "tcp") -> dict:
    return {"id": pid, "role": role, "ok": cls is None, "proven_by_auth": False, "proxy": None,
            "failure": C.make_failure(cls, stage, "m") if cls else None}


def _result(paths: list, dns_failure: dict | None = None) -> dict:
    verdict, reason, _ = C.compute_verdict(paths, {"failure": dns_failure})
    return {"verdict": verdict, "verdict_reason": reason, "paths": paths, "dns": {"failure": dns_failure}}


@pytest.mark.parametrize(("paths", "dns_failure", "says"), [
    ([_path("8883 direct", "primary", E.TCP_TIMEOUT), _path("443 direct", "fallback", None)], None,
     ["EPNS is degraded: Only the fallback 443 direct works", "8883 direct breaks at the tcp stage (tcp_timeout)",
      "Fix: " + E.FAILURE_CLASSES[E.TCP_TIMEOUT].hint]),
    ([_path("8883 direct", "primary", None), _path("443 direct", "fallback", E.TLS_UNTRUSTED, "tls")], None,
     # The fallback's failure is the cause only when no primary path fails.
     ["EPNS is reachable", "443 direct breaks at the tls stage (tls_untrusted)"]),
    ([_path("8883 direct", "primary", E.DNS_NO_ANSWER, "dns"), _path("443 direct", "fallback", E.DNS_NO_ANSWER, "dns")],
     C.make_failure(E.DNS_NO_ANSWER, "dns", "epns.eset.com does not resolve"),
     ["EPNS is unreachable: epns.eset.com does not resolve",
      "8883 direct breaks at the dns stage (dns_no_answer)", "Fix: " + E.FAILURE_CLASSES[E.DNS_NO_ANSWER].hint]),
])
def test_the_message_is_the_verdict_with_its_cause_and_fix(paths: list, dns_failure: dict | None,
                                                          says: list) -> None:
    message = C.verdict_failure_message(_result(paths, dns_failure))
    for words in says:
        assert words in message
    assert message.count("EPNS is ") == 1
