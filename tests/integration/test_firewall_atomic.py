"""Atomic under failure part-way, in the lab: on each backend one step of the apply fails for real, after earlier
steps succeeded, and the host is left byte for byte (and mode for mode) as it was, with an error that names the
step. Each failure is a read-only bind mount inside the host's own mount namespace (EROFS, or EBUSY for a rename
onto it: what root gets from a read-only /etc, a locked file, a full or failing disk):

- nftables: /etc/nftables.conf cannot be replaced. The ruleset was applied and our own include file written; both
  must go.
- iptables (legacy, refresh job): /etc/cron.d cannot be written. The rules, ipsets, /etc/iptables/rules.v4/v6 and
  the refresh job's files were written before it; all must go, the directory /etc/iptables included.
- firewalld (policy, persist): /etc/firewalld/policies cannot be written while staging: the ipset files were staged
  before it.
- ufw: /etc/ufw/user6.rules cannot be written: the IPv4 rules were added before the IPv6 one failed.

Then a late failure on every backend at once: with the refresh job, /etc/cron.d cannot be written, the last file of
the run. The whole change was applied and verified and the backend's own files written before it (nftables: its
include file and /etc/nftables.conf, which is 0755 on Debian; iptables-nft: the saved rules; firewalld: its
permanent XML objects): the engine must put the files back with their modes and undo the runtime change.
"""
from __future__ import annotations

import contextlib
from typing import Any, Dict, Iterator

import pytest
from _firewall import (
    clean_host,
    firewall,
    firewalld_default_deny,
    firewalld_reset,
    iptables_default_deny,
    nft_default_deny,
    ping,
    ufw_default_deny,
    ufw_reset,
)
from _firewall_host import etc_snapshot, netfilter_snapshot, read_only

pytestmark = pytest.mark.lab


def _changed(before: str, after: str) -> Dict[str, Any]:
    """The lines of a snapshot that went away and those that came: what an assertion message should show."""
    old, new = set(before.splitlines()), set(after.splitlines())
    return {"gone": sorted(old - new), "new": sorted(new - old)}


@pytest.fixture(scope="module")
def cases(lab: Any) -> Iterator[Dict[str, Dict[str, Any]]]:
    chosen = {
        lab.agents[0]: {"backend": "nftables", "args": {"backend": "nftables"}, "read_only": "/etc/nftables.conf",
                        "step": "writing /etc/nftables.conf failed"},
        lab.agents[1]: {"backend": "iptables", "args": {"backend": "iptables", "iptables_variant": "legacy",
                                                        "refresh": True},
                        "read_only": "/etc/cron.d", "step": "writing /etc/cron.d/protectnet_epns_refresh failed"},
        lab.agents[2]: {"backend": "firewalld", "args": {"backend": "firewalld"},
                        "read_only": "/etc/firewalld/policies",
                        "step": "staging /etc/firewalld/policies/protectnet_epns.xml failed"},
        lab.server: {"backend": "ufw", "args": {"backend": "ufw"}, "read_only": "/etc/ufw/user6.rules",
                     "step": "ufw allow out to 2001:db8:0:1::10"},
    }
    for host in chosen:
        firewalld_reset(lab, host)
        ufw_reset(lab, host)
    yield chosen
    for host in chosen:
        firewalld_reset(lab, host)
        ufw_reset(lab, host)
        clean_host(lab, host)


@pytest.fixture(scope="module")
def failed(lab: Any, cases: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    nft_default_deny(lab, lab.agents[0])
    iptables_default_deny(lab, lab.agents[1], "legacy")
    firewalld_default_deny(lab, lab.agents[2])
    ufw_default_deny(lab, lab.server)
    ping(lab, list(cases))
    rec: Dict[str, Any] = {"cases": cases}
    rec["netfilter_before"] = {h: netfilter_snapshot(lab, h) for h in cases}
    rec["etc_before"] = {h: etc_snapshot(lab, h) for h in cases}
    with contextlib.ExitStack() as stack:
        for host, case in cases.items():
            stack.enter_context(read_only(lab, host, case["read_only"]))
        rec["results"] = firewall(lab, {h: c["args"] for h, c in cases.items()})
        rec["netfilter_after"] = {h: netfilter_snapshot(lab, h) for h in cases}
    rec["etc_after"] = {h: etc_snapshot(lab, h) for h in cases}
    return rec


@pytest.mark.parametrize("backend", ["nftables", "iptables", "firewalld", "ufw"])
def test_the_failed_step_is_named_and_the_change_put_back(failed: Dict[str, Any], backend: str) -> None:
    host = next(h for h, c in failed["cases"].items() if c["backend"] == backend)
    result = failed["results"][host]
    assert result.get("failed") is True, result
    assert failed["cases"][host]["step"] in result["msg"], result["msg"]
    assert "put back" in result["msg"] or "previous state was kept" in result["msg"], result["msg"]


@pytest.mark.parametrize("backend", ["nftables", "iptables", "firewalld", "ufw"])
def test_netfilter_is_byte_identical(failed: Dict[str, Any], backend: str) -> None:
    host = next(h for h, c in failed["cases"].items() if c["backend"] == backend)
    assert failed["netfilter_after"][host] == failed["netfilter_before"][host]


@pytest.mark.parametrize("backend", ["nftables", "iptables", "firewalld", "ufw"])
def test_etc_is_byte_and_mode_identical(failed: Dict[str, Any], backend: str) -> None:
    host = next(h for h, c in failed["cases"].items() if c["backend"] == backend)
    assert failed["etc_after"][host] == failed["etc_before"][host], _changed(failed["etc_before"][host],
                                                                            failed["etc_after"][host])


LATE = {"nftables": {"backend": "nftables"}, "iptables": {"backend": "iptables", "iptables_variant": "nft"},
        "firewalld": {"backend": "firewalld"}, "ufw": {"backend": "ufw"}}


@pytest.fixture(scope="module")
def failed_late(lab: Any, cases: Dict[str, Dict[str, Any]], failed: Dict[str, Any]) -> Dict[str, Any]:
    """The same hosts after the first round (which left them as before), the iptables host now on iptables-nft."""
    by_backend = {c["backend"]: h for h, c in cases.items()}
    iptables_host = by_backend["iptables"]
    clean_host(lab, iptables_host)
    iptables_default_deny(lab, iptables_host, "nft")
    rec: Dict[str, Any] = {"hosts": by_backend}
    rec["netfilter_before"] = {h: netfilter_snapshot(lab, h) for h in cases}
    rec["etc_before"] = {h: etc_snapshot(lab, h) for h in cases}
    with contextlib.ExitStack() as stack:
        for host in cases:
            stack.enter_context(read_only(lab, host, "/etc/cron.d"))
        rec["results"] = firewall(lab, {by_backend[b]: {**a, "refresh": True} for b, a in LATE.items()})
        rec["netfilter_after"] = {h: netfilter_snapshot(lab, h) for h in cases}
    rec["etc_after"] = {h: etc_snapshot(lab, h) for h in cases}
    return rec


@pytest.mark.parametrize("backend", list(LATE))
def test_a_late_file_failure_puts_back_runtime_and_files(failed_late: Dict[str, Any], backend: str) -> None:
    host = failed_late["hosts"][backend]
    result = failed_late["results"][host]
    assert result.get("failed") is True, result
    assert "writing /etc/cron.d/protectnet_epns_refresh failed" in result["msg"], result["msg"]
    assert "the previous firewall state and files were put back" in result["msg"], result["msg"]
    assert failed_late["netfilter_after"][host] == failed_late["netfilter_before"][host]
    assert failed_late["etc_after"][host] == failed_late["etc_before"][host], _changed(
        failed_late["etc_before"][host], failed_late["etc_after"][host])
