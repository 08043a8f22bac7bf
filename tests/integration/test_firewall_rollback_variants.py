"""The rollback of an unconfirmed change on the variants the backend tests do not cover, in the lab: iptables-nft
(test_firewall_backends_lab.py[iptables] proves legacy), firewalld direct mode, and firewalld with the default
persist: true (test_firewall_backends_lab.py[firewalld] proves persist: false). New SSH sessions are refused on each
host, so the confirmation over a fresh connection cannot arrive and the host's own watchdog must put everything
back: the netfilter state and every file of /etc (content, mode, owner). On the firewalld hosts a restart of
firewalld afterwards (it loads its permanent configuration) must not bring the change back: the permanent
configuration was never changed.
"""
from __future__ import annotations

from typing import Any, Dict, Iterator

import pytest
from _firewall import (
    BLOCK_NEW_SSH,
    firewall,
    firewalld_default_deny,
    firewalld_direct_deny,
    firewalld_reset,
    iptables_default_deny,
    ping,
    sh,
)
from _firewall_host import etc_snapshot, netfilter_snapshot, wait_for

pytestmark = pytest.mark.lab

ROLLBACK_SECONDS = 5


@pytest.fixture(scope="module")
def variants(lab: Any) -> Iterator[Dict[str, Dict[str, Any]]]:
    chosen = {
        lab.server: {"args": {"backend": "iptables", "iptables_variant": "nft"}, "firewalld": False},
        lab.agents[0]: {"args": {"backend": "firewalld", "refresh": True}, "firewalld": True},
        lab.agents[1]: {"args": {"backend": "firewalld", "firewalld_mode": "direct", "refresh": True},
                        "firewalld": True},
    }
    for host in chosen:
        firewalld_reset(lab, host)
    yield chosen
    for host in chosen:
        lab.run(host, ["nft", "delete", "table", "inet", "pn_block_ssh"])
        firewalld_reset(lab, host)


@pytest.fixture(scope="module")
def reverted(lab: Any, variants: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    iptables_default_deny(lab, lab.server, "nft")
    firewalld_default_deny(lab, lab.agents[0])
    firewalld_direct_deny(lab, lab.agents[1])
    ping(lab, list(variants))  # the session that applies the change: established, so it is kept
    for host in variants:
        sh(lab, host, ["nft", "-f", "-"], input=BLOCK_NEW_SSH)
    rec: Dict[str, Any] = {"variants": variants}
    rec["netfilter_before"] = {h: netfilter_snapshot(lab, h) for h in variants}
    rec["etc_before"] = {h: etc_snapshot(lab, h) for h in variants}
    rec["results"] = firewall(lab, {h: {**s["args"], "rollback_seconds": ROLLBACK_SECONDS}
                                    for h, s in variants.items()})
    rec["netfilter_reverted"] = {h: wait_for(lambda h=h: netfilter_snapshot(lab, h), rec["netfilter_before"][h])
                                 for h in variants}
    rec["etc_reverted"] = {h: etc_snapshot(lab, h) for h in variants}
    rec["watchdog"] = {h: sh(lab, h, ["sh", "-c", "cat /run/protectnet_epns/rollback/*/result.json"])
                       for h in variants}
    for host, spec in variants.items():
        if spec["firewalld"]:
            lab.stop_service(host, "firewalld")
            lab.start_service(host, "firewalld")  # loads the permanent configuration, as at boot
    rec["netfilter_restarted"] = {h: netfilter_snapshot(lab, h) for h in variants}
    rec["etc_restarted"] = {h: etc_snapshot(lab, h) for h in variants}
    return rec


def test_the_change_was_applied_and_not_confirmed(reverted: Dict[str, Any]) -> None:
    for host, result in reverted["results"].items():
        assert result.get("failed") is True and "rolled back" in result["msg"], (host, result.get("msg"))
        # new sessions stay refused, so the controller may not get to read the host's record (the host's own
        # result.json is checked below)
        assert result["rollback"]["state"] in ("reverted", "unverified"), (host, result["rollback"])
        assert result["changes"]["containers"]["added"], host  # it did change something before the revert


def test_the_watchdog_restored_the_exact_netfilter_state(reverted: Dict[str, Any]) -> None:
    for host in reverted["variants"]:
        assert reverted["netfilter_reverted"][host] == reverted["netfilter_before"][host], host
        assert '"ok": true' in reverted["watchdog"][host], (host, reverted["watchdog"][host])


def test_no_file_changed_content_mode_or_owner(reverted: Dict[str, Any]) -> None:
    for host in reverted["variants"]:
        assert reverted["etc_reverted"][host] == reverted["etc_before"][host], host


def test_a_firewalld_restart_after_the_rollback_does_not_bring_the_change_back(reverted: Dict[str, Any]) -> None:
    for host, spec in reverted["variants"].items():
        if not spec["firewalld"]:
            continue
        assert reverted["netfilter_restarted"][host] == reverted["netfilter_before"][host], host
        assert "protectnet" not in reverted["netfilter_restarted"][host], host
        assert reverted["etc_restarted"][host] == reverted["etc_before"][host], host
