"""The firewall's refresh job against a real failing resolver: a family whose query fails keeps its addresses.

agent1 applies epns_firewall (nftables, refresh job) while epns.eset.com is 198.18.1.11 / 2001:db8:0:1::11 (its
/etc/hosts): the sets hold those, the "last known" addresses. Then the name comes from the lab's resolver again
(198.18.1.10 / ::10) and the refresh job runs the way cron runs it, three times: with the router dropping only the
AAAA queries (dns fault `aaaa-timeout`: getaddrinfo says EAI_AGAIN), with a resolver that answers A and has no AAAA
(`a-only`: NODATA, an answer), and with the healthy resolver.
"""
from __future__ import annotations

import ipaddress
import json
import shlex
from typing import Any, Dict, Iterator, List

import pytest
from _firewall import (
    CONFIRMED_ROLLBACK_SECONDS,
    LAB_BROKER4,
    LAB_BROKER6,
    clean_host,
    firewall,
    nft_default_deny,
    set_epns_address,
    sh,
)

pytestmark = pytest.mark.lab

OLD4, OLD6 = "198.18.1.11", "2001:db8:0:1::11"  # what the name resolved to when the module ran
PERSISTED = "/etc/protectnet_epns/nftables.nft"


def _resolve_to_old_addresses(lab: Any, host: str) -> None:
    hosts = sh(lab, host, ["cat", "/etc/hosts"]).rstrip("\n")
    sh(lab, host, ["sh", "-c", "cat > /etc/hosts"], input=f"{hosts}\n{OLD4} epns.eset.com\n{OLD6} epns.eset.com\n")


def epns_sets(lab: Any, host: str) -> Dict[str, List[str]]:
    """'family table set' -> its elements, for every set of the module (its own table and its copy in the host's)."""
    listing = json.loads(sh(lab, host, ["nft", "-j", "list", "sets"]))
    sets: Dict[str, List[str]] = {}
    for item in listing["nftables"]:
        nft_set = item.get("set")
        if nft_set and "epns" in nft_set["name"]:
            key = f"{nft_set['family']} {nft_set['table']} {nft_set['name']}"
            sets[key] = sorted(_element(e) for e in sh_elements(lab, host, key))
    return sets


def sh_elements(lab: Any, host: str, key: str) -> List[Any]:
    listed = json.loads(sh(lab, host, ["nft", "-j", "list", "set", *key.split()]))
    return next(i["set"] for i in listed["nftables"] if "set" in i).get("elem", [])


def _element(elem: Any) -> str:
    """nft lists a single address bare and a network as a prefix: both as a network, '198.18.1.10/32'."""
    if isinstance(elem, dict) and "prefix" in elem:
        return str(ipaddress.ip_network(f"{elem['prefix']['addr']}/{elem['prefix']['len']}"))
    return str(ipaddress.ip_network(str(elem)))


def by_family(sets: Dict[str, List[str]], version: int) -> Dict[str, List[str]]:
    return {k: v for k, v in sets.items() if k.endswith(f"_v{version}")}


def run_like_cron(lab: Any, host: str) -> Dict[str, Any]:
    """The cron.d entry's command, with the environment its lines set, through /bin/sh as cron does."""
    entry = sh(lab, host, ["cat", "/etc/cron.d/protectnet_epns_refresh"])
    env = [line for line in entry.splitlines() if "=" in line.split(" ")[0] and not line.startswith("#")]
    job = next(line for line in entry.splitlines() if line and not line.startswith("#") and line not in env)
    command = job.split(None, 6)[6]  # minute hour day month weekday user command
    assert command.startswith("/usr/bin/python3 /etc/protectnet_epns/refresh.py"), job
    done = lab.run(host, ["env", "-i", *env, "/bin/sh", "-c", command], timeout=60)
    return {"rc": done.returncode, "out": done.stdout, "err": done.stderr, "command": shlex.split(command)}


@pytest.fixture(scope="module")
def flow(lab: Any) -> Iterator[Dict[str, Any]]:
    host = lab.agents[0]
    clean_host(lab, host)
    nft_default_deny(lab, host)
    _resolve_to_old_addresses(lab, host)
    rec: Dict[str, Any] = {"host": host}
    args = {"backend": "nftables", "refresh": True, "rollback_seconds": CONFIRMED_ROLLBACK_SECONDS}
    try:
        rec["apply"] = firewall(lab, {host: args})[host]
        rec["sets_applied"] = epns_sets(lab, host)
        set_epns_address(lab, host, LAB_BROKER4)  # the name comes from the lab's resolver again
        for mode in ("aaaa-timeout", "a-only", None):
            if mode is None:
                lab.clear(host, "dns")
            else:
                lab.fault(host, "dns", mode=mode)
            rec[mode or "healthy"] = {"refresh": run_like_cron(lab, host), "sets": epns_sets(lab, host),
                                      "persisted": sh(lab, host, ["cat", PERSISTED])}
        rec["absent"] = firewall(lab, {host: {"state": "absent"}})[host]
        yield rec
    finally:
        lab.clear(host, "dns")
        clean_host(lab, host)
        set_epns_address(lab, host, LAB_BROKER4)


def _only(sets: Dict[str, List[str]]) -> List[str]:
    """The one list of elements every copy of a family's set holds (the module's table and the host's agree)."""
    values = {tuple(v) for v in sets.values()}
    assert len(sets) >= 1 and len(values) == 1, sets
    return list(values.pop())


def test_apply_put_the_last_known_addresses_in_the_sets(flow: Dict[str, Any]) -> None:
    assert not flow["apply"].get("failed"), flow["apply"].get("msg")
    assert _only(by_family(flow["sets_applied"], 4)) == [f"{OLD4}/32"]
    assert _only(by_family(flow["sets_applied"], 6)) == [f"{OLD6}/128"]


def test_a_failed_aaaa_query_keeps_the_ipv6_set_and_the_a_answer_refreshes_ipv4(flow: Dict[str, Any]) -> None:
    step = flow["aaaa-timeout"]
    assert step["refresh"]["rc"] == 0, step["refresh"]
    assert _only(by_family(step["sets"], 4)) == [f"{LAB_BROKER4}/32"]
    assert _only(by_family(step["sets"], 6)) == [f"{OLD6}/128"], step["refresh"]
    assert f"{OLD6}/128" in step["persisted"] and f"{LAB_BROKER4}/32" in step["persisted"]


def test_the_kept_family_is_logged_even_with_quiet(flow: Dict[str, Any]) -> None:
    step = flow["aaaa-timeout"]
    assert "--quiet" in step["refresh"]["command"]
    log = step["refresh"]["out"]
    assert log.startswith("protectnet_epns refresh: "), step["refresh"]
    result = json.loads(log.split(": ", 1)[1])
    assert result["changed"] is True
    kept = [w for w in result["warnings"] if w.startswith("IPv6 addresses of 'epns.eset.com' kept")]
    assert kept and "AAAA query for 'epns.eset.com' failed" in kept[0], result["warnings"]
    assert not any(w.startswith("IPv4") for w in result["warnings"]), result["warnings"]


def test_an_answer_without_aaaa_empties_the_ipv6_set(flow: Dict[str, Any]) -> None:
    step = flow["a-only"]
    assert step["refresh"]["rc"] == 0, step["refresh"]
    assert _only(by_family(step["sets"], 4)) == [f"{LAB_BROKER4}/32"]
    assert _only(by_family(step["sets"], 6)) == [], step["refresh"]
    assert "addresses of 'epns.eset.com' kept" not in step["refresh"]["out"], step["refresh"]
    assert OLD6 not in step["persisted"]


def test_the_healthy_answer_fills_both_families_again(flow: Dict[str, Any]) -> None:
    step = flow["healthy"]
    assert _only(by_family(step["sets"], 4)) == [f"{LAB_BROKER4}/32"]
    assert _only(by_family(step["sets"], 6)) == [f"{LAB_BROKER6}/128"], step["refresh"]
    assert not flow["absent"].get("failed"), flow["absent"].get("msg")

