# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The staged EPNS reachability probe: which paths to try, the threads that try them, the overall
# deadline, and the result document. The stages live in _probe_tunnel (TCP, proxy CONNECT),
# _probe_tls and _probe_session (MQTT, hold); options in _probe_settings; the naming of failures
# and the verdict in _probe_classify. Standard library only; runs on managed hosts with Python 3.8+.
#
# Timing model: one overall deadline for the call, and a per-stage deadline (connect_timeout)
# inside it. Every blocking operation gets a socket timeout computed from the nearer of the two,
# so no peer behaviour can make a stage or the call overrun. Paths and addresses run in daemon
# threads; whatever has not finished when the overall deadline comes is reported as `timeout`
# and left behind (it ends by itself moments later, because its own timeouts are bounded too).
from __future__ import annotations

import socket
import ssl
import threading
import time
import typing as t

from ansible_collections.protectnet.epns.plugins.module_utils import _epns as E
from ansible_collections.protectnet.epns.plugins.module_utils._probe_attempt import AttemptLog, StageClock, ms
from ansible_collections.protectnet.epns.plugins.module_utils._probe_classify import (
    Result,
    StageFailure,
    compute_verdict,
    make_failure,
    summarize_path,
)
from ansible_collections.protectnet.epns.plugins.module_utils._probe_session import MqttSession
from ansible_collections.protectnet.epns.plugins.module_utils._probe_settings import (
    ProbeConfigError,
    ProbePlan,
    ProbeSettings,
    ProxySpec,
    new_client_id,
    prepare,
)
from ansible_collections.protectnet.epns.plugins.module_utils._probe_tls import TlsStage, close_quietly
from ansible_collections.protectnet.epns.plugins.module_utils._probe_tunnel import (
    Route,
    proxy_connect_stage,
    tcp_stage,
)

# Callers (the module, tests) know these names from here; they live in _probe_settings.
__all__ = ["Probe", "ProbeConfigError", "ProbeSettings", "prepare", "run_probe"]

MAX_ADDRESSES = 16
# Kept back from the caller's timeout so the result can still be built and printed in time.
_DEADLINE_MARGIN = 0.05


class _Lookup:
    """getaddrinfo in a daemon thread, so a hanging resolver cannot hold the deadline."""

    def __init__(self, name: str, family: str) -> None:
        self.name = name
        self.family = family
        self.done = threading.Event()
        self.addresses: list[tuple[int, t.Any]] = []
        self.error: BaseException | None = None
        self.started = time.monotonic()
        self.elapsed = 0.0

    def start(self) -> _Lookup:
        threading.Thread(target=self._run, name="epns-dns", daemon=True).start()
        return self

    def _run(self) -> None:
        af = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}.get(self.family, socket.AF_UNSPEC)
        try:
            infos = socket.getaddrinfo(self.name, None, af, socket.SOCK_STREAM)
            seen = set()
            for fam, _type, _proto, _canon, sockaddr in infos:
                if fam not in (socket.AF_INET, socket.AF_INET6) or sockaddr[0] in seen:
                    continue
                seen.add(sockaddr[0])
                self.addresses.append((fam, sockaddr))
        except (OSError, UnicodeError) as exc:
            self.error = exc
        self.elapsed = time.monotonic() - self.started
        self.done.set()


def _family_name(af: int) -> str:
    return "ipv6" if af == socket.AF_INET6 else "ipv4"


class _Path:
    def __init__(self, port: int, role: str, proxy: ProxySpec | None, index: int) -> None:
        self.index = index
        self.port = port
        self.role = role
        self.proxy = proxy
        self.id = f"{port} {'via ' + proxy.url if proxy else 'direct'}"
        self.lock = threading.Lock()
        self.attempts: list[AttemptLog] = []
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
        self.s = plan.settings
        self.started = time.monotonic()
        margin = min(_DEADLINE_MARGIN, self.s.timeout * 0.05)
        self.deadline = self.started + self.s.timeout - margin
        clock = StageClock(self.deadline, self.s.connect_timeout)
        self.tls_stage = TlsStage(plan, clock)
        self.mqtt_session = MqttSession(plan, clock, self.tls_stage)
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
        if self.s.mqtt_client_id is None:
            return new_client_id()
        suffix = f"-{n}"
        return base[:E.CLIENT_ID_MAX - len(suffix)] + suffix

    def _left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    # -- orchestration -----------------------------------------------------------------------

    def run(self) -> Result:
        s = self.s
        routes: list[tuple[int, str, ProxySpec | None]] = []
        if s.direct:
            routes += [(s.primary_port, "primary", None), (s.fallback_port, "fallback", None)]
        for proxy in self.plan.proxies:
            routes += [(s.primary_port, "primary", proxy), (s.fallback_port, "fallback", proxy)]
        paths = [_Path(port, role, proxy, index) for index, (port, role, proxy) in enumerate(routes)]

        dns = _Lookup(s.host, s.address_family).start() if s.direct else None
        proxy_lookups = {p.host: _Lookup(p.host, s.address_family).start()
                         for p in self.plan.proxies}
        lookups: dict[str, _Lookup] = {}
        for path in paths:
            lookup = dns if path.proxy is None else proxy_lookups[path.proxy.host]
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
        path_results = [self._finish_path(path, lookups[path.id]) for path in paths]
        dns_result = self._dns_result(dns)
        verdict, reason, working_fallback = compute_verdict(path_results, dns_result)
        return {
            "verdict": verdict,
            "verdict_reason": reason,
            "working_fallback": working_fallback,
            "host": s.host,
            "elapsed_ms": ms(time.monotonic() - self.started),
            "dns": dns_result,
            "paths": path_results,
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
            route = Route(af, sockaddr, self.s.host, path.port, path.proxy)
            if len(addresses) == 1:
                self._run_attempt(attempt, route)
            else:
                th = threading.Thread(target=self._run_attempt, args=(attempt, route),
                                      name="epns-attempt", daemon=True)
                th.start()
                workers.append(th)
        for th in workers:
            th.join(self._left())

    def _planned_stages(self, path: _Path) -> tuple[str, ...]:
        proxy = ("proxy_connect",) if path.proxy else ()
        hold = ("hold",) if self.s.hold_seconds > 0 else ()
        return ("tcp", *proxy, "tls", "mqtt", *hold)

    def _run_attempt(self, att: AttemptLog, route: Route) -> None:
        sock: socket.socket | None = None
        tls: ssl.SSLSocket | None = None
        try:
            sock = tcp_stage(att, self.clock, route)
            if route.proxy is not None:
                proxy_connect_stage(att, self.clock, route, sock)
            tls = self.tls_stage.run(att, route, sock)
            self.mqtt_session.connect(att, tls)
            if self.s.hold_seconds > 0:
                self.mqtt_session.hold(att, tls)
            att.succeed()
        except StageFailure as exc:
            att.record(exc)
        except Exception as exc:
            # A bug here must not pass for a network fault (a crash in the hold once read as idle_dropped).
            att.fail(E.PROBE_ERROR, f"unexpected error in the probe: {exc}", repr(exc))
        finally:
            if tls is not None:
                self.tls_stage.forget(tls)
            close_quietly(tls, sock)

    # -- result assembly ---------------------------------------------------------------------

    def _dns_result(self, dns: _Lookup | None) -> Result:
        if dns is None:
            # The proxy resolves the name on proxy-only probes; the host's resolver is not asked.
            return {"ok": None, "addresses": [], "ipv4": [], "ipv6": [], "elapsed_ms": 0,
                    "failure": None}
        failure = self._lookup_failure(dns, E.DNS_NO_ANSWER, s_name=self.s.host)
        addrs = [sa[0] for _af, sa in dns.addresses] if dns.done.is_set() else []
        return {
            "ok": failure is None,
            "addresses": addrs,
            "ipv4": [sa[0] for af, sa in dns.addresses if af == socket.AF_INET],
            "ipv6": [sa[0] for af, sa in dns.addresses if af == socket.AF_INET6],
            "elapsed_ms": ms(dns.elapsed if dns.done.is_set()
                             else time.monotonic() - dns.started),
            "failure": failure,
        }

    def _lookup_failure(self, lookup: _Lookup, cls: str, s_name: str) -> Result | None:
        if not lookup.done.is_set():
            return make_failure(E.TIMEOUT, "dns",
                                f"the resolver gave no answer for {s_name} before the overall deadline",
                                "deadline", ms(time.monotonic() - lookup.started))
        elapsed = ms(lookup.elapsed)
        if lookup.error is not None:
            return make_failure(cls, "dns", f"{s_name} does not resolve: {lookup.error}",
                                str(lookup.error), elapsed)
        if not lookup.addresses:
            family = {"ipv4": "IPv4 ", "ipv6": "IPv6 "}.get(self.s.address_family, "")
            return make_failure(cls, "dns", f"{s_name} has no {family}address",
                                "no addresses", elapsed)
        return None

    def _finish_path(self, path: _Path, lookup: _Lookup) -> Result:
        with path.lock:
            path.closed = True
            attempts = list(path.attempts)
        for attempt in attempts:
            attempt.abandon()
        results = [a.result() for a in attempts]
        failure: Result | None
        note = None
        if path.proxy is not None:
            failure = self._lookup_failure(lookup, E.PROXY_UNREACHABLE, s_name=f"proxy host {path.proxy.host}")
        else:
            failure = self._lookup_failure(lookup, E.DNS_NO_ANSWER, s_name=self.s.host)
        if failure is not None:
            ok = proven = False
        elif not results:
            ok = proven = False
            failure = make_failure(E.TIMEOUT, "tcp", f"the overall deadline came before {path.id} "
                                   "was tried", "deadline", 0)
        else:
            ok, proven, failure, note = summarize_path(results)
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


def run_probe(settings: ProbeSettings) -> Result:
    """Validate settings, probe every path, and return the result (see docs/architecture.md).

    Raises ProbeConfigError for option values the probe cannot use; never for network trouble.
    """
    return Probe(prepare(settings)).run()
