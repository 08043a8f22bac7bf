"""A synthetic ESET fleet for the report at scale: `{host: epns_probe result}` plus the role's `hosts_info`.

Deterministic (same `count` and `seed`, same fleet, byte for byte) and shaped like the real module's result
(plugins/modules/epns_probe.py RETURN, tests/unit/fixtures/report). Used by `make bench` part (d) and by the
10,000-host browser test (part B of issue 16), so keep `fleet()` and the `Fleet` fields stable.

The fleet is made of sites of about 25 Linux hosts. Sites reuse the same few private /24s (branch offices do) and
each has its own public address, so only the public address (or gateway + ESET group) tells two sites apart. What is
wrong is mostly a property of the site, as in real networks:

- most sites are healthy (8883 direct works);
- 8883 dropped on the way (443 direct works: degraded);
- a proxy site whose proxy refuses CONNECT to 8883 (443 through the proxy works: degraded);
- TLS interception on 443 with 8883 dropped (unreachable, `tls_intercepted`);
- a DNS filter sinkholes epns.eset.com (unreachable, `dns_sinkholed`);

plus per-host noise: a host Ansible could not reach (`{"unreachable": true}`), a host whose IPv6 fails. Beside the
probed hosts, every site has Windows and macOS devices that ESET knows and Ansible does not probe (in `hosts_info`
only, `in_play: false`), and a few probed hosts are unknown to ESET (no `eset_*` keys).
"""
from __future__ import annotations

import random
import typing as t
from datetime import datetime, timedelta, timezone

Result = t.Dict[str, t.Any]

HOSTS_PER_SITE = 25
PRIVATE_PREFIXES = ("192.168.1", "192.168.0", "10.0.0", "172.16.10")  # repeated across sites on purpose
EPNS_V4 = "198.18.1.10"
EPNS_V6 = "2001:db8:1::10"
SINKHOLE = "0.0.0.0"
NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
# Site causes and their share of sites (the rest of the sites are healthy).
SITE_CAUSES = (("port_8883_dropped", 0.12), ("proxy_refuses_8883", 0.08), ("tls_intercepted", 0.05),
               ("dns_sinkholed", 0.04))
NON_PROBED_PER_SITE = (("windows", 8), ("macos", 2))


class Fleet(t.NamedTuple):
    results: t.Dict[str, Result]       # {inventory host: epns_probe result or an unreachable task result}
    hosts_info: t.Dict[str, Result]    # {host: the role's facts per host, contract16 `hosts_info`}
    sites: t.List[Result]              # what was generated, for assertions: id, public_ip, prefix, proxy, cause


_FAILURES = {
    "tcp_timeout": ("tcp", "no answer to the TCP connect within 3 s", "timed out",
                    "Allow outbound TCP to EPNS on this port in the host firewall and on every network firewall."),
    "proxy_refused": ("proxy_connect", "the proxy refused CONNECT to epns.eset.com:8883: HTTP/1.1 403 Forbidden",
                      "403", "Allow CONNECT to epns.eset.com on port 8883 in the proxy."),
    "tls_intercepted": ("tls", "the certificate chain ends in a TLS interceptor's anchor (Corp Inspection CA)",
                        "intercepted", "Exempt epns.eset.com from TLS inspection."),
    "dns_sinkholed": ("dns", "epns.eset.com resolves only to 0.0.0.0, a DNS filter's block answer", "sinkholed",
                      "Allow epns.eset.com (and *.eset.com) in the DNS filter."),
    "tcp_unreachable": ("tcp", "no route to the host", "[Errno 101] Network is unreachable",
                        "Check the IPv6 route or set address_family."),
}


def _failure(cls: str, elapsed_ms: int) -> Result:
    stage, message, raw, hint = _FAILURES[cls]
    return {"class": cls, "stage": stage, "message": message, "raw_error": raw, "elapsed_ms": elapsed_ms,
            "hint": hint}


def _tls(intercepted: bool) -> Result:
    issuer = "CN=Corp Inspection CA, O=Example Corp" if intercepted else "CN=Lab EPNS CA, O=protectnet lab"
    return {"version": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384", "subject": "CN=epns.eset.com",
            "issuer": issuer, "sans": ["epns.eset.com"], "not_after": "2030-01-01T00:00:00Z",
            "sha256": ("cd" if intercepted else "ab") * 32, "verified": True,
            "anchor": "Corp Inspection CA" if intercepted else "Lab EPNS CA"}


def _stage(name: str, ok: bool, elapsed_ms: int, detail: t.Optional[Result] = None) -> Result:
    return {"name": name, "ok": ok, "elapsed_ms": elapsed_ms, "detail": detail or {}}


def _attempt(address: str, family: str, outcome: str, proxy: bool, rng: random.Random) -> Result:
    """outcome: "ok", or a failure class of _FAILURES."""
    tcp_ms = rng.randint(1, 40)
    stages = [_stage("tcp", outcome not in ("tcp_timeout", "tcp_unreachable"),
                     3000 if outcome == "tcp_timeout" else tcp_ms)]
    proxy_status = None
    if proxy and stages[0]["ok"]:
        refused = outcome == "proxy_refused"
        proxy_status = "HTTP/1.1 403 Forbidden" if refused else "HTTP/1.1 200 Connection established"
        stages.append(_stage("proxy_connect", not refused, rng.randint(1, 9), {"status": 403 if refused else 200}))
    tls = None
    if all(s["ok"] for s in stages):
        tls = _tls(outcome == "tls_intercepted")
        stages.append(_stage("tls", outcome == "ok", rng.randint(8, 60)))
    mqtt = None
    if outcome == "ok":
        mqtt = {"return_code": 0, "meaning": "Connection accepted", "session_present": False}
        stages.append(_stage("mqtt", True, rng.randint(2, 30)))
    failure = None if outcome == "ok" else _failure(outcome, stages[-1]["elapsed_ms"])
    return {"address": address, "family": family, "ok": outcome == "ok", "proven_by_auth": False,
            "failure": failure, "elapsed_ms": sum(s["elapsed_ms"] for s in stages), "stages": stages,
            "proxy_status": proxy_status, "tls": tls, "mqtt": mqtt}


def _path(port: int, proxy: t.Optional[str], attempts: t.List[Result], dns_failure: t.Optional[Result]) -> Result:
    ok = any(a["ok"] for a in attempts)
    failing = [a["failure"] for a in attempts if a["failure"]]
    failure = None if ok else (failing[-1] if failing else dns_failure)
    note = None
    if ok and failing:
        note = f"{attempts[0]['address']} failed ({failing[0]['class']}); another address works"
    label = f"{port} via {proxy}" if proxy else f"{port} direct"
    return {"id": label, "port": port, "role": "primary" if port == 8883 else "fallback", "proxy": proxy, "ok": ok,
            "proven_by_auth": False, "note": note, "failure": failure,
            "elapsed_ms": max([a["elapsed_ms"] for a in attempts] or [3001]), "attempts": attempts}


def _outcomes(cause: str, proxy: t.Optional[str]) -> t.Dict[t.Tuple[int, bool], str]:
    """(port, through the proxy) -> outcome, for a site's cause. A proxy site that refuses CONNECT to 8883 forces
    the proxy (nothing leaves directly); the proxy of a site that drops 8883 cannot reach 8883 either."""
    forced = bool(proxy) and cause == "proxy_refuses_8883"
    intercepted = cause == "tls_intercepted"
    direct_8883 = "tcp_timeout" if forced or cause in ("port_8883_dropped", "tls_intercepted") else "ok"
    direct_443 = "tls_intercepted" if intercepted else "tcp_timeout" if forced else "ok"
    via_8883 = "proxy_refused" if cause in ("proxy_refuses_8883", "port_8883_dropped", "tls_intercepted") else "ok"
    return {(8883, False): direct_8883, (443, False): direct_443, (8883, True): via_8883,
            (443, True): "tls_intercepted" if intercepted else "ok"}


def _verdict(paths: t.List[Result]) -> t.Tuple[str, str, t.Optional[str]]:
    primary = [p for p in paths if p["ok"] and p["role"] == "primary"]
    fallback = [p for p in paths if p["ok"] and p["role"] == "fallback"]
    if primary:
        return "reachable", f"{primary[0]['id']} works", None
    if fallback:
        return "degraded", f"only {fallback[0]['id']} works", fallback[0]["id"]
    first = paths[0]["failure"] if paths else None
    return "unreachable", first["message"] if first else "no path works", None


def _dns(sinkholed: bool, v6: bool) -> Result:
    if sinkholed:
        failure = _failure("dns_sinkholed", 2)
        return {"ok": False, "addresses": [], "ipv4": [], "ipv6": [], "elapsed_ms": 2, "sinkholed": [SINKHOLE],
                "nameservers": [{"server": "192.168.1.1", "type": "A", "rcode": "NOERROR", "addresses": [SINKHOLE],
                                 "error": None, "truncated": False, "elapsed_ms": 1}], "failure": failure}
    addresses = [EPNS_V6, EPNS_V4] if v6 else [EPNS_V4]
    return {"ok": True, "addresses": addresses, "ipv4": [EPNS_V4], "ipv6": [EPNS_V6] if v6 else [],
            "elapsed_ms": 1, "sinkholed": [], "nameservers": [], "failure": None}


def probe_result(site: Result, local_ip: str, v6_broken: bool, rng: random.Random) -> Result:
    """One host's epns_probe result at `site` (see `_site`)."""
    cause, proxy = site["cause"], site["proxy"]
    dns = _dns(cause == "dns_sinkholed", v6_broken)
    outcomes = _outcomes(cause, proxy)
    paths = []
    for via in [None] + ([proxy] if proxy else []):
        for port in (8883, 443):
            attempts: t.List[Result] = []
            if via:
                attempts = [_attempt(site["proxy_ip"], "ipv4", outcomes[(port, True)], True, rng)]
            elif dns["ok"]:
                if v6_broken:
                    attempts.append(_attempt(EPNS_V6, "ipv6", "tcp_unreachable", False, rng))
                attempts.append(_attempt(EPNS_V4, "ipv4", outcomes[(port, False)], False, rng))
            paths.append(_path(port, via, attempts, dns["failure"]))
    verdict, reason, working_fallback = _verdict(paths)
    return {"changed": False, "host": "epns.eset.com", "verdict": verdict, "verdict_reason": reason,
            "working_fallback": working_fallback, "server_verdict": None, "server_verdict_reason": None,
            "eset_server": None, "server_paths": [],
            "elapsed_ms": max(p["elapsed_ms"] for p in paths) + dns["elapsed_ms"], "dns": dns, "paths": paths,
            "egress": {"ipv4": {"source": local_ip, "gateway": site["gateway"], "interface": "eth0"},
                       "ipv6": None}}


def _site(index: int, rng: random.Random) -> Result:
    draw, cause, edge = rng.random(), "healthy", 0.0
    for name, share in SITE_CAUSES:
        edge += share
        if draw < edge:
            cause = name
            break
    prefix = PRIVATE_PREFIXES[index % len(PRIVATE_PREFIXES)]
    has_proxy = cause == "proxy_refuses_8883" or rng.random() < 0.3
    public_ip = f"{81 + index // 62500}.{(index // 250) % 250}.{index % 250}.{10 + index % 7}"
    return {"id": f"site{index:04d}", "public_ip": public_ip, "prefix": f"{prefix}.0/24", "gateway": f"{prefix}.1",
            "proxy": f"http://proxy.site{index:04d}.example:3128" if has_proxy else None,
            "proxy_ip": f"{prefix}.3", "cause": cause, "group": f"All/Sites/site{index:04d}"}


def _agent_connection(state: str, port: t.Optional[int], via: t.Optional[str]) -> Result:
    summary = {"state": state, "port": port, "via": via, "up_seconds": 3600 if port else None}
    where = f"on {port} {'via the proxy' if via == 'proxy' else 'directly'}" if port else "not connected"
    return {"changed": False, "visible": True, "reason": None, "processes": [{"pid": 1234, "name": "ERAAgent"}],
            "connections": [], "summary": summary, "message": f"the agent itself is {where}"}


def _eset_facts(host: str, site: Result, local_ip: str, family: str, serial: int, rng: random.Random) -> Result:
    last_sync = NOW - timedelta(seconds=rng.randint(30, 3 * 86400 if rng.random() < 0.05 else 3600))
    proxy = site["proxy"]
    return {"eset_uuid": f"{serial:08x}-0000-4000-8000-{serial:012x}", "eset_display_name": host,
            "eset_group_path": site["group"], "eset_public_ip": site["public_ip"], "eset_local_ip": local_ip,
            "eset_os_family": family, "eset_last_sync": last_sync.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eset_agent_proxy": {"host": proxy.split("//")[1].rsplit(":", 1)[0], "port": 3128, "services": ["all"],
                                 "fallback_direct": True, "from_policies": [], "map_confirmed": False,
                                 "reason": None} if proxy else
            {"host": None, "port": None, "services": [], "fallback_direct": None, "from_policies": [],
             "map_confirmed": False, "reason": "unknown (maybe set by the installer)"},
            "epns_probe_supported": family == "linux", "epns_host_support_skip": family != "linux"}


def _add_site(fleet: Fleet, site: Result, hosts: int, rng: random.Random) -> None:
    for number in range(hosts):
        host = f"{site['id']}-lnx{number:02d}"
        local_ip = f"{site['prefix'].rsplit('.', 1)[0]}.{20 + number}"
        serial = len(fleet.hosts_info) + 1
        info = {} if rng.random() < 0.01 else _eset_facts(host, site, local_ip, "linux", serial, rng)
        if rng.random() < 0.01:
            fleet.results[host] = {"unreachable": True, "changed": False,
                                   "msg": f"Failed to connect to the host via ssh: ssh: connect to host {local_ip} "
                                          "port 22: Connection timed out"}
        else:
            fleet.results[host] = probe_result(site, local_ip, rng.random() < 0.03, rng)
            port = 8883 if fleet.results[host]["verdict"] == "reachable" else 443
            info["agent_connection"] = _agent_connection("connected", port, "proxy" if site["proxy"] else "direct")
        info["in_play"] = True
        fleet.hosts_info[host] = info
    for family, per_site in NON_PROBED_PER_SITE:
        for number in range(per_site):
            host = f"{site['id']}-{family[:3]}{number:02d}"
            local_ip = f"{site['prefix'].rsplit('.', 1)[0]}.{100 + len(family) * 10 + number}"
            info = _eset_facts(host, site, local_ip, family, len(fleet.hosts_info) + 1, rng)
            fleet.hosts_info[host] = {**info, "in_play": False}


def fleet(count: int, seed: int = 16) -> Fleet:
    """`count` probed Linux hosts (results), in sites of HOSTS_PER_SITE, and their sites' non-probed devices."""
    rng = random.Random(seed)
    made = Fleet({}, {}, [])
    index = 0
    while len(made.results) < count:
        site = _site(index, rng)
        made.sites.append(site)
        _add_site(made, site, min(HOSTS_PER_SITE, count - len(made.results)), rng)
        index += 1
    return made


def eset_inventory(made: Fleet) -> Result:
    """The inventory plugin's summary var, as the role passes it (`eset_inventory`, with `left_out`)."""
    return {"devices": sum(1 for info in made.hosts_info.values() if "eset_uuid" in info), "left_out": []}
