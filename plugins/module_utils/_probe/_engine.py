# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The staged EPNS reachability probe: which paths to try, the threads that try them, the overall
# deadline, and the result document. The stages live in _tunnel (TCP, proxy CONNECT),
# _tls and _session (MQTT, hold); options in _options; the naming of failures
# and the verdict in _classify. Standard library only; runs on managed hosts with Python 3.8+.
#
# Timing model: one overall deadline for the call, and a per-stage deadline (connect_timeout)
# inside it. Every blocking operation gets a socket timeout computed from the nearer of the two,
# so no peer behaviour can make a stage or the call overrun. Paths and addresses run in daemon
# threads; whatever has not finished when the overall deadline comes is reported as `timeout`
# and left behind (it ends by itself moments later, because its own timeouts are bounded too).
from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
import typing as t

from .. import _epns
from . import _dns, _egress
from ._attempt import AttemptLog, StageClock, ms
from ._classify import (
    Result,
    StageFailure,
    compute_verdict,
    make_failure,
    summarize_path,
)
from ._options import (
    ProbeOptions,
    ProbePlan,
    ProxySpec,
    new_client_id,
    prepare,
)
from ._server import (
    SERVER_ROLE,
    ServerTlsStage,
    compute_server_verdict,
    server_failure,
    server_path_id,
)
from ._session import MqttSession
from ._tls import TlsStage, close_quietly
from ._tunnel import (
    Route,
    proxy_connect_stage,
    tcp_stage,
)

MAX_ADDRESSES = 16
# Kept back from the caller's timeout so the result can still be built and printed in time.
_DEADLINE_MARGIN = 0.05
# Below this, asking the nameservers after a failed lookup could only time out.
_MIN_ASK_SECONDS = 0.1


class _Lookup:
    """getaddrinfo in a daemon thread, bounded by the DNS stage's own deadline (connect_timeout), so
    a hanging resolver cannot hold the probe. For the EPNS name (`sinkholes` given), a failure, a
    timeout or a sinkhole answer is then explained by asking the nameservers directly (_dns)
    before `done` is set; `addresses` never holds a sinkholed address."""

    def __init__(self, name: str, family: str, stage: StageBound,
                 sinkholes: t.Optional[t.List[_dns.Network]] = None) -> None:
        self.name = name
        self.family = family
        self.stage = stage
        self.sinkholes = sinkholes
        self.done = threading.Event()
        self.addresses: t.List[t.Tuple[int, t.Any]] = []
        self.sinkholed: t.List[str] = []
        self.error: t.Optional[BaseException] = None
        self.timed_out = False
        self.replies: t.List[_dns.Reply] = []
        self.explained: t.Optional[t.Tuple[str, str]] = None  # (class, message) for the EPNS name
        self.started = time.monotonic()
        self.elapsed = 0.0

    def start(self) -> _Lookup:
        threading.Thread(target=self._run, name="epns-dns", daemon=True).start()
        return self

    def _run(self) -> None:
        found: t.Dict[str, t.Any] = {}
        worker = threading.Thread(target=self._getaddrinfo, args=(found,), name="epns-gai", daemon=True)
        worker.start()
        worker.join(self.stage.seconds)
        self.elapsed = time.monotonic() - self.started
        # A late answer lands in `found` after this point and is ignored: the stage is over.
        self.timed_out = "infos" not in found and "error" not in found
        self.error = found.get("error")
        for fam, sockaddr in found.get("infos", []):
            if self.sinkholes is not None and _dns.is_sinkhole(sockaddr[0], self.sinkholes):
                self.sinkholed.append(sockaddr[0])
            else:
                self.addresses.append((fam, sockaddr))
        if self.sinkholes is not None and not self.addresses:
            self._explain()
        self.done.set()

    def _getaddrinfo(self, found: t.Dict[str, t.Any]) -> None:
        af = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}.get(self.family, socket.AF_UNSPEC)
        try:
            infos = socket.getaddrinfo(self.name, None, af, socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            found["error"] = exc
            return
        unique: t.Dict[str, t.Tuple[int, t.Any]] = {}
        for fam, _type, _proto, _canon, sockaddr in infos:
            if fam in (socket.AF_INET, socket.AF_INET6):
                unique.setdefault(str(sockaddr[0]), (fam, sockaddr))
        found["infos"] = list(unique.values())

    def _explain(self) -> None:
        """Ask the nameservers in their own words: another stage's time at most, never past the deadline."""
        servers = _dns.read_nameservers()
        budget = min(self.stage.seconds, self.stage.deadline - time.monotonic() - _DEADLINE_MARGIN)
        if servers and budget > _MIN_ASK_SECONDS:
            self.replies = _dns.ask_all(servers, self.name, self.family, budget)
        if self.timed_out:
            self.explained = _dns.explain_timeout(self.name, self.stage.limit, servers, self.replies)
        elif self.sinkholed:
            self.explained = _dns.explain_sinkhole(self.name, self.sinkholed, self.replies)
        else:
            error = str(self.error) if self.error is not None else "no addresses"
            self.explained = _dns.explain_failure(self.name, self.family, error, servers, self.replies)


class StageBound(t.NamedTuple):
    """How long the DNS stage may take, what that limit is called, and the probe's overall deadline."""

    seconds: float
    limit: str
    deadline: float


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _family_name(af: int) -> str:
    return "ipv6" if af == socket.AF_INET6 else "ipv4"


class _Path:
    def __init__(self, port: int, role: str, proxy: t.Optional[ProxySpec], index: int, target: str) -> None:
        self.index = index
        self.port = port
        self.role = role
        self.proxy = proxy
        self.target = target
        self.server = role == SERVER_ROLE
        self.id = server_path_id(port, proxy.url if proxy else None) if self.server else \
            f"{port} {'via ' + proxy.url if proxy else 'direct'}"
        self.lock = threading.Lock()
        self.attempts: t.List[AttemptLog] = []
        self.closed = False

    def add(self, attempt: AttemptLog) -> bool:
        with self.lock:
            if self.closed:
                return False
            self.attempts.append(attempt)
            return True


class Probe:
    def __init__(self, plan: ProbePlan) -> None:
        self.plan = plan
        self.settings = plan.settings
        self.started = time.monotonic()
        margin = min(_DEADLINE_MARGIN, self.settings.timeout * 0.05)
        self.deadline = self.started + self.settings.timeout - margin
        clock = StageClock(self.deadline, self.settings.connect_timeout)
        self.tls_stage = TlsStage(plan, clock)
        self.mqtt_session = MqttSession(plan, clock, self.tls_stage)
        self.server_tls = ServerTlsStage(plan.server, clock) if plan.server is not None else None
        self.clock = clock

    def client_id_for(self, n: int) -> str:
        """The MQTT client id of the n-th session (path index x MAX_ADDRESSES + address index).

        A broker ends the older of two sessions with the same client id, so concurrent attempts
        would cut each other off (seen as a false idle_dropped while holding). The first session
        uses the id as given, so an operator's id reaches the broker unchanged at least once.
        """
        base = self.plan.client_id
        if n == 0:
            return base
        if self.settings.mqtt_client_id is None:
            return new_client_id()
        suffix = f"-{n}"
        return base[:_epns.CLIENT_ID_MAX - len(suffix)] + suffix

    def _left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    # -- orchestration -----------------------------------------------------------------------

    def _dns_stage(self) -> StageBound:
        left = self._left()
        if left < self.settings.connect_timeout:
            # Ends a little before the deadline, so the lookup is reported as the DNS stage's timeout.
            return StageBound(left * 0.8, f"the time left before the overall timeout ({left:.1f} s)", self.deadline)
        limit = self.settings.connect_timeout
        return StageBound(limit, f"connect_timeout ({limit:g} s)", self.deadline)

    def _paths(self) -> t.List[_Path]:
        settings = self.settings
        routes: t.List[t.Tuple[int, str, t.Optional[ProxySpec]]] = []
        hops: t.List[t.Optional[ProxySpec]] = [None] if settings.direct else []
        hops += self.plan.proxies
        for hop in hops:
            routes += [(settings.primary_port, "primary", hop), (settings.fallback_port, "fallback", hop)]
        if self.plan.server is not None:
            routes += [(settings.eset_server_port, SERVER_ROLE, hop) for hop in hops]
        return [_Path(port, role, proxy, index, self.plan.server.settings.host if role == SERVER_ROLE and
                      self.plan.server else settings.host) for index, (port, role, proxy) in enumerate(routes)]

    def run(self) -> Result:
        settings = self.settings
        paths = self._paths()

        stage = self._dns_stage()
        # An address given as host involves no DNS, so there is no answer to call a sinkhole.
        sinkholes = None if _is_address(settings.host) else self.plan.sinkholes
        dns = _Lookup(settings.host, settings.address_family, stage, sinkholes).start() if settings.direct else None
        proxy_lookups = {p.host: _Lookup(p.host, settings.address_family, stage).start()
                         for p in self.plan.proxies}
        server_dns = None
        if settings.direct and self.plan.server is not None:
            server_dns = _Lookup(self.plan.server.settings.host, settings.address_family, stage).start()
        lookups: t.Dict[str, _Lookup] = {}
        for path in paths:
            lookup = (server_dns if path.server else dns) if path.proxy is None else proxy_lookups[path.proxy.host]
            if lookup is None:  # direct paths exist only when dns was started
                raise RuntimeError("internal error: a direct path without a DNS lookup")
            lookups[path.id] = lookup
        threads = []
        for path in paths:
            th = threading.Thread(target=self._run_path, args=(path, lookups[path.id]),
                                  name="epns-path", daemon=True)
            th.start()
            threads.append(th)
        for th in threads:
            th.join(self._left())
        if dns is not None:
            dns.done.wait(self._left())  # a failed lookup's explanation comes after its paths gave up
        results = [self._finish_path(path, lookups[path.id]) for path in paths]
        path_results = [r for r in results if r["role"] != SERVER_ROLE]
        server_results = [r for r in results if r["role"] == SERVER_ROLE]
        dns_result = self._dns_result(dns)
        verdict, reason, working_fallback = compute_verdict(path_results, dns_result)
        server_verdict, server_reason = compute_server_verdict(server_results)
        return {
            "verdict": verdict,
            "verdict_reason": reason,
            "working_fallback": working_fallback,
            "host": settings.host,
            "elapsed_ms": ms(time.monotonic() - self.started),
            "dns": dns_result,
            # Toward EPNS; on a proxy-only probe (no EPNS lookup) toward the proxy, the host's real way out.
            "egress": _egress.egress_facts(dns_result["addresses"] or [
                sa[0] for lk in proxy_lookups.values() if lk.done.is_set() for _af, sa in lk.addresses]),
            "paths": path_results,
            "eset_server": self.plan.server.settings.host if self.plan.server else None,
            "server_verdict": server_verdict,
            "server_verdict_reason": server_reason,
            "server_paths": server_results,
        }

    def _run_path(self, path: _Path, lookup: _Lookup) -> None:
        lookup.done.wait(self._left())
        if not lookup.done.is_set() or lookup.error or not lookup.addresses:
            return
        # Every address, also of a proxy: one unreachable address of a dual-stack proxy is not the proxy.
        addresses = lookup.addresses[:MAX_ADDRESSES]
        planned = self._planned_stages(path)
        workers = []
        for i, (af, sockaddr) in enumerate(addresses):
            attempt = AttemptLog(sockaddr[0], _family_name(af),
                                 self.client_id_for(path.index * MAX_ADDRESSES + i), planned)
            if not path.add(attempt):
                return
            route = Route(af, sockaddr, path.target, path.port, path.proxy)
            if len(addresses) == 1:
                self._run_attempt(attempt, route, path.server)
            else:
                th = threading.Thread(target=self._run_attempt, args=(attempt, route, path.server),
                                      name="epns-attempt", daemon=True)
                th.start()
                workers.append(th)
        for th in workers:
            th.join(self._left())

    def _planned_stages(self, path: _Path) -> t.Tuple[str, ...]:
        proxy = ("proxy_connect",) if path.proxy else ()
        if path.server:
            return ("tcp", *proxy, "tls")
        hold = ("hold",) if self.settings.hold_seconds > 0 else ()
        return ("tcp", *proxy, "tls", "mqtt", *hold)

    def _run_attempt(self, att: AttemptLog, route: Route, server: bool = False) -> None:
        """One attempt; to the ESET PROTECT server (server) it ends with TLS: the agent protocol is not spoken."""
        sock: t.Optional[socket.socket] = None
        tls: t.Optional[ssl.SSLSocket] = None
        tls_stage = self.server_tls if server and self.server_tls is not None else self.tls_stage
        try:
            sock = tcp_stage(att, self.clock, route)
            if route.proxy is not None:
                proxy_connect_stage(att, self.clock, route, sock)
            tls = tls_stage.run(att, route, sock)
            if not server:
                self.mqtt_session.connect(att, tls)
            if self.settings.hold_seconds > 0 and not server:
                self.mqtt_session.hold(att, tls)
            att.succeed()
        except StageFailure as exc:
            att.record(exc)
        except Exception as exc:
            # A bug here must not pass for a network fault (a crash in the hold once read as idle_dropped).
            att.fail(_epns.PROBE_ERROR, f"unexpected error in the probe: {exc}", repr(exc))
        finally:
            if tls is not None:
                tls_stage.forget(tls)
            close_quietly(tls, sock)

    # -- result assembly ---------------------------------------------------------------------

    def _dns_result(self, dns: t.Optional[_Lookup]) -> Result:
        if dns is None:
            # The proxy resolves the name on proxy-only probes; the host's resolver is not asked.
            return {"ok": None, "addresses": [], "ipv4": [], "ipv6": [], "sinkholed": [], "nameservers": [],
                    "elapsed_ms": 0, "failure": None}
        failure = self._lookup_failure(dns, _epns.DNS_NO_ANSWER, looked_up=self.settings.host)
        done = dns.done.is_set()
        addresses = dns.addresses if done else []
        return {
            "ok": failure is None,
            "addresses": [sa[0] for _af, sa in addresses],
            "ipv4": [sa[0] for af, sa in addresses if af == socket.AF_INET],
            "ipv6": [sa[0] for af, sa in addresses if af == socket.AF_INET6],
            "sinkholed": list(dns.sinkholed) if done else [],
            "nameservers": [_reply_result(r) for r in dns.replies] if done else [],
            "elapsed_ms": ms(dns.elapsed if done else time.monotonic() - dns.started),
            "failure": failure,
        }

    def _lookup_failure(self, lookup: _Lookup, cls: str, looked_up: str) -> t.Optional[Result]:
        if not lookup.done.is_set():
            return make_failure(_epns.TIMEOUT, "dns",
                                f"the resolver gave no answer for {looked_up} before the overall deadline",
                                "deadline", ms(time.monotonic() - lookup.started))
        elapsed = ms(lookup.elapsed)
        if lookup.explained is not None:  # the EPNS name, in the nameservers' words
            named, message = lookup.explained
            raw = str(lookup.error) if lookup.error is not None else _dns.said(lookup.replies) or "no addresses"
            return make_failure(named, "dns", message, raw, elapsed)
        if lookup.timed_out:
            return make_failure(cls, "dns", f"{looked_up}: no answer from the resolver within {lookup.stage.limit}",
                                "timeout", elapsed)
        if lookup.error is not None:
            return make_failure(cls, "dns", f"{looked_up} does not resolve: {lookup.error}",
                                str(lookup.error), elapsed)
        if not lookup.addresses:
            family = {"ipv4": "IPv4 ", "ipv6": "IPv6 "}.get(self.settings.address_family, "")
            return make_failure(cls, "dns", f"{looked_up} has no {family}address",
                                "no addresses", elapsed)
        return None

    def _finish_path(self, path: _Path, lookup: _Lookup) -> Result:
        with path.lock:
            path.closed = True
            attempts = list(path.attempts)
        for attempt in attempts:
            attempt.abandon()
        results = [a.result() for a in attempts]
        failure: t.Optional[Result]
        note = None
        if path.proxy is not None:
            failure = self._lookup_failure(lookup, _epns.PROXY_UNREACHABLE, looked_up=f"proxy host {path.proxy.host}")
        else:
            failure = self._lookup_failure(lookup, _epns.DNS_NO_ANSWER, looked_up=path.target)
        if failure is not None:
            ok = proven = False
        elif not results:
            ok = proven = False
            failure = make_failure(_epns.TIMEOUT, "tcp", f"the overall deadline came before {path.id} "
                                   "was tried", "deadline", 0)
        else:
            ok, proven, failure, note = summarize_path(results)
        if path.server:
            failure, note = server_failure(failure, note, proven)
        return {
            "id": path.id,
            "port": path.port,
            "role": path.role,
            "proxy": path.proxy.url if path.proxy else None,
            "ok": ok,
            "proven_by_auth": proven,
            "note": note,
            "failure": failure,
            "elapsed_ms": max([r["elapsed_ms"] for r in results] or [0]),
            "attempts": results,
        }


def _reply_result(reply: _dns.Reply) -> Result:
    return {"server": reply.server, "type": reply.qtype, "rcode": reply.rcode, "addresses": reply.addresses,
            "error": reply.error, "truncated": reply.truncated, "elapsed_ms": ms(reply.elapsed)}


def run_probe(settings: ProbeOptions) -> Result:
    """Validate settings, probe every path, and return the result (see docs/architecture.md).

    Raises ProbeConfigError for option values the probe cannot use; never for network trouble.
    """
    return Probe(prepare(settings)).run()
