# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""One client for ESET PROTECT On-Prem 13+ and ESET Connect (cloud).

Every call goes through :meth:`EsetClient.request`, which

* renews the token before it expires, and once more after a 401;
* retries 429, 502, 503 and 504 (and connection failures) with capped exponential backoff, honouring Retry-After,
  within ``retries`` attempts and a bounded total wait; a call that is not idempotent (a POST that creates) is
  retried only where the server cannot have acted on it (429, a refused connection): after a 5xx or a lost answer
  it may have made the change, so the error says the outcome is unknown (``outcome_unknown``) and the caller
  looks before it creates again;
* collects a cloud ``202`` answer by repeating the identical request with its ``response-id`` header;
* raises :class:`EsetApiError` naming the status, the call, the body and ESET's ``request-id``.

:meth:`EsetClient.paginate` follows ``nextPageToken``. HTTP goes through ``ansible.module_utils.urls.Request``: the
client needs nothing beyond ansible-core. TLS is verified unless ``validate_certs`` is false.
"""
from __future__ import annotations

import email.utils
import inspect
import json
import os
import random
import socket
import ssl
import time
import typing as t
from dataclasses import dataclass, field
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode

from ansible.module_utils.urls import Request

from ._auth import CloudTokens, OnPremTokens, TokenSource
from ._endpoints import CLOUD, Endpoints
from ._errors import MIN_SECRET_LEN, EsetApiError, EsetConfigError

RETRY_STATUSES = (429, 502, 503, 504)
# Answers that say the server did not act on the call: safe to repeat even a create.
NOT_ACTED_STATUSES = (429,)
# Answers after which a call that is not idempotent may or may not have been carried out.
UNKNOWN_OUTCOME_STATUSES = (500, 502, 503, 504)
IDEMPOTENT_METHODS = ("GET", "HEAD", "OPTIONS", "PUT", "DELETE")
OUTCOME_UNKNOWN = "the server may have carried out this call, so it is not repeated blindly"
BACKOFF_BASE = 1.0
BACKOFF_CAP = 30.0
RETRY_AFTER_CAP = 60.0
COLLECT_TIMEOUT = 150.0  # ESET Connect answers 504 after 120 s; this only bounds a misbehaving server
COLLECT_INTERVAL_CAP = 5.0
MAX_PAGES = 100000
USER_AGENT = "protectnet.epns (ansible)"


@dataclass
class ConnectionOptions:
    deployment: str
    username: str
    password: str
    server: t.Optional[str] = None
    port: int = 9443
    region: t.Optional[str] = None
    domain_user: bool = False
    ca_path: t.Optional[str] = None
    validate_certs: bool = True
    timeout: float = 30.0
    retries: int = 6
    api_urls: t.Dict[str, str] = field(default_factory=dict)
    page_size: t.Optional[int] = None

    @classmethod
    def from_params(cls, params: t.Mapping[str, t.Any]) -> ConnectionOptions:
        return cls(deployment=params["deployment"], username=params.get("username") or "",
                   password=params.get("password") or "", server=params.get("server"),
                   port=params.get("port") or 9443, region=params.get("region"),
                   domain_user=bool(params.get("domain_user")), ca_path=params.get("ca_path"),
                   validate_certs=params.get("validate_certs", True) is not False,
                   timeout=float(params.get("timeout") or 30), retries=int(params.get("retries", 6)),
                   api_urls=dict(params.get("api_urls") or {}), page_size=params.get("page_size"))


@dataclass
class CallStats:
    requests: int = 0
    retries: int = 0
    reauthentications: int = 0
    collected_202: int = 0
    slept: float = 0.0
    pages: int = 0


def _retry_after(value: t.Optional[str]) -> t.Optional[float]:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass
class _PendingResult:
    """A cloud 202 being collected: its response-id, when to give up, how often it was polled."""

    response_id: t.Optional[str] = None
    deadline: t.Optional[float] = None
    polls: int = 0


class EsetClient:
    """Talks to one ESET PROTECT deployment with one set of credentials."""

    def __init__(self, options: ConnectionOptions, *, warn: t.Optional[t.Callable[[str], None]] = None,
                 log: t.Optional[t.Callable[[str], None]] = None,
                 on_secret: t.Optional[t.Callable[[str], None]] = None,
                 sleep: t.Callable[[float], None] = time.sleep, clock: t.Callable[[], float] = time.monotonic,
                 jitter: t.Callable[[], float] = random.random) -> None:
        if options.retries < 0:
            raise EsetConfigError("retries must be 0 or more")
        if options.timeout <= 0:
            raise EsetConfigError("timeout must be more than 0 seconds")
        self.options = options
        self.endpoints = Endpoints(options.deployment, options.server, options.port, options.region,
                                   options.api_urls)
        self._warn = warn or (lambda msg: None)
        self._log = log or (lambda msg: None)
        self._secrets: t.Set[str] = set()
        self._on_secret_cb = on_secret
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter
        self.stats = CallStats()
        if not options.validate_certs:
            self._warn("validate_certs is false: the ESET PROTECT server's TLS certificate is not verified, so a "
                       "machine in the middle could read the API password. Prefer ca_path with the server's CA.")
        self._http = Request(timeout=options.timeout, validate_certs=options.validate_certs,
                             http_agent=USER_AGENT, follow_redirects="none", use_netrc=False,
                             **self._tls_arguments())
        token_args = (self.endpoints.token_url(), options.username, options.password, self._send_with_retries,
                      clock, self._remember_secret)
        self.tokens: TokenSource
        if options.deployment == CLOUD:
            self.tokens = CloudTokens(*token_args)
        else:
            self.tokens = OnPremTokens(*token_args, domain_user=options.domain_user)

    def _tls_arguments(self) -> t.Dict[str, t.Any]:
        """ansible-core 2.17+ takes the TLS context itself; 2.16's Request has no `context` and builds one per request
        from ca_path, which must be a file there (the controller's ansible-core provides module_utils/urls.py)."""
        context = self._tls_context()
        if "context" in inspect.signature(Request.__init__).parameters:
            return {"context": context}
        ca_path = self.options.ca_path
        if ca_path and os.path.isdir(ca_path):
            raise EsetConfigError(f"ca_path {ca_path} is a directory: ansible-core 2.16 on the controller needs a CA "
                                  "file (a PEM file with the CA certificates); directories work from 2.17")
        return {"ca_path": ca_path or None}

    def _tls_context(self) -> ssl.SSLContext:
        """One TLS context for every request (building one per request would reload the trust store each time)."""
        ca_path = self.options.ca_path
        if ca_path and not os.path.exists(ca_path):
            raise EsetConfigError(f"ca_path {ca_path} does not exist")
        try:
            if ca_path and os.path.isdir(ca_path):
                context = ssl.create_default_context(capath=ca_path)
            else:
                context = ssl.create_default_context(cafile=ca_path or None)
        except (ssl.SSLError, OSError) as exc:
            raise EsetConfigError(f"ca_path {ca_path} holds no usable CA certificate: {exc}") from None
        if not self.options.validate_certs:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    # -- secrets ------------------------------------------------------------------------------------------
    def _remember_secret(self, value: str) -> None:
        self._secrets.add(value)
        if self._on_secret_cb is not None:
            self._on_secret_cb(value)

    def add_secret(self, value: str) -> None:
        """A value read from the server that errors and module output must not show (a policy's password)."""
        if value and len(value) >= MIN_SECRET_LEN:
            self._remember_secret(value)

    @property
    def secrets(self) -> t.Set[str]:
        return set(self._secrets)

    # -- transport ------------------------------------------------------------------------------------------
    def _send_once(self, method: str, url: str, body: t.Optional[bytes],
                   headers: t.Dict[str, str]) -> t.Tuple[int, t.Dict[str, str], str]:
        self.stats.requests += 1
        try:
            response = self._http.open(method, url, data=body, headers=headers)
            status = response.getcode()
            got = {k.lower(): v for k, v in response.headers.items()}
            text = response.read().decode("utf-8", "replace")
        except HTTPError as exc:
            status = exc.code
            got = {k.lower(): v for k, v in (exc.headers.items() if exc.headers else [])}
            try:
                text = exc.read().decode("utf-8", "replace")
            except Exception:
                text = ""
        except (URLError, socket.timeout, ssl.SSLError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            untrusted = isinstance(reason, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(reason)
            hint = ""
            if untrusted:
                hint = " (the server certificate is not trusted: give ca_path with the CA that issued it)"
            error = EsetApiError(None, method, url, message=f"connection failed: {reason}{hint}",
                                 secrets=self._secrets)
            error.never_sent = untrusted or isinstance(reason, (ConnectionRefusedError, socket.gaierror))
            error.permanent = untrusted
            raise error from None
        return status, got, text

    def _backoff(self, attempt: int, retry_after: t.Optional[float]) -> float:
        if retry_after is not None:
            return min(retry_after, RETRY_AFTER_CAP)
        return min(BACKOFF_CAP, BACKOFF_BASE * (2 ** attempt)) * (0.5 + self._jitter() / 2)

    def _send_with_retries(self, method: str, url: str, body: t.Optional[bytes], headers: t.Dict[str, str],
                           idempotent: bool = True) -> t.Tuple[int, t.Dict[str, str], str]:
        """One exchange, retried on 429/502/503/504 and on connection failures, ``retries`` times at most.

        A call that is not idempotent is retried only after an answer or failure that proves the server did not
        act on it; otherwise the failure is returned (or raised) at once, marked ``outcome_unknown``.
        """
        attempt = 0
        while True:
            try:
                status, got, text = self._send_once(method, url, body, headers)
            except EsetApiError as exc:
                if exc.permanent:
                    raise
                if not idempotent and not exc.never_sent:
                    exc.outcome_unknown = True
                    exc.message += "; " + OUTCOME_UNKNOWN
                    raise
                if attempt >= self.options.retries:
                    raise
                delay = self._backoff(attempt, None)
            else:
                if status not in RETRY_STATUSES:
                    return status, got, text
                if attempt >= self.options.retries:
                    return status, got, text
                if not idempotent and status not in NOT_ACTED_STATUSES:
                    return status, got, text
                delay = self._backoff(attempt, _retry_after(got.get("retry-after")))
                self._log(f"{method} {url}: HTTP {status}, retry {attempt + 1} of {self.options.retries} "
                          f"in {delay:.1f}s")
            attempt += 1
            self.stats.retries += 1
            self.stats.slept += delay
            self._sleep(delay)

    # -- API calls ----------------------------------------------------------------------------------------
    def url(self, service: str, path: str, query: t.Optional[t.Mapping[str, t.Any]] = None) -> str:
        url = self.endpoints.base(service) + path
        if query:
            pairs = []
            for key, value in query.items():
                if value is None:
                    continue
                for item in value if isinstance(value, (list, tuple)) else [value]:
                    pairs.append((key, str(item)))
            if pairs:
                url += "?" + urlencode(pairs)
        return url

    def pause(self, attempt: int) -> None:
        """Wait before attempt ``attempt + 1`` of something the caller repeats itself (the same backoff)."""
        delay = self._backoff(attempt, None)
        self.stats.retries += 1
        self.stats.slept += delay
        self._sleep(delay)

    def request(self, method: str, service: str, path: str, query: t.Optional[t.Mapping[str, t.Any]] = None,
                body: t.Any = None, idempotent: t.Optional[bool] = None) -> t.Any:
        """Send one API call and return its parsed JSON answer (``{}`` for an empty body).

        ``idempotent`` defaults by method: a POST is not (it may create), unless the caller knows better (a read
        or a "set to this value" call). A failed call that is not idempotent and may have been carried out raises
        an :class:`EsetApiError` with ``outcome_unknown`` set.
        """
        if idempotent is None:
            idempotent = method.upper() in IDEMPOTENT_METHODS
        url = self.url(service, path, query)
        data = json.dumps(body).encode("utf-8") if body is not None else None
        renewed = False
        pending = _PendingResult()
        while True:
            headers = {"Accept": "application/json",
                       "Authorization": f"Bearer {self.tokens.token()}"}
            if data is not None:
                headers["Content-Type"] = "application/json"
            if pending.response_id:
                headers["response-id"] = pending.response_id
            status, got, text = self._send_with_retries(method, url, data, headers,
                                                        idempotent or bool(pending.response_id))
            if status == 401 and not renewed:
                renewed = True
                self.stats.reauthentications += 1
                self._log(f"{method} {url}: HTTP 401, renewing the token once")
                self.tokens.token(renew=True)
                continue
            if status == 202 and (self.options.deployment == CLOUD or got.get("response-id")):
                self._wait_for_result(pending, method, url, got, text)
                continue
            if status >= 300:
                raise self._status_error(method, url, status, text, got.get("request-id"), idempotent,
                                         pending.response_id)
            return self._parsed(method, url, status, text, got.get("request-id"))

    def _wait_for_result(self, pending: _PendingResult, method: str, url: str, got: t.Mapping[str, str],
                         text: str) -> None:
        """After a 202: remember its response-id and wait before collecting, within COLLECT_TIMEOUT."""
        new_id = got.get("response-id") or pending.response_id
        if not new_id:
            raise EsetApiError(202, method, url, text, got.get("request-id"), secrets=self._secrets,
                               message="202 without a response-id header: the result cannot be collected")
        pending.response_id = new_id
        if pending.deadline is None:
            pending.deadline = self._clock() + COLLECT_TIMEOUT
        if self._clock() >= pending.deadline:
            raise EsetApiError(202, method, url, text, got.get("request-id"), secrets=self._secrets,
                               message=f"the result was still pending after {COLLECT_TIMEOUT:.0f}s "
                                       f"(response-id {pending.response_id})")
        delay = min(COLLECT_INTERVAL_CAP, 0.5 * (2 ** pending.polls))
        pending.polls += 1
        self.stats.collected_202 += 1
        self.stats.slept += delay
        self._sleep(delay)

    def _status_error(self, method: str, url: str, status: int, text: str, rid: t.Optional[str], idempotent: bool,
                      response_id: t.Optional[str]) -> EsetApiError:
        message = {401: "the token was refused even after logging in again",
                   403: "the API user lacks the permission for this call",
                   404: "not found" + (" (the pending result expired or was already collected)"
                                       if response_id else ""),
                   429: f"still rate-limited after {self.options.retries} retries"}.get(status, "")
        unknown = not idempotent and status in UNKNOWN_OUTCOME_STATUSES
        if unknown:
            message = OUTCOME_UNKNOWN
        error = EsetApiError(status, method, url, text, rid, message=message, secrets=self._secrets)
        error.outcome_unknown = unknown
        return error

    def _parsed(self, method: str, url: str, status: int, text: str, rid: t.Optional[str]) -> t.Any:
        if not text.strip():
            return {}
        try:
            return json.loads(text)
        except ValueError:
            raise EsetApiError(status, method, url, text, rid, message="the answer is not JSON",
                               secrets=self._secrets) from None

    def paginate(self, service: str, path: str, key: str, query: t.Optional[t.Mapping[str, t.Any]] = None,
                 page_size: t.Optional[int] = None) -> t.List[t.Any]:
        """Every item under ``key`` across all pages (``pageToken``/``nextPageToken``)."""
        items: t.List[t.Any] = []
        token = ""
        seen: t.Set[str] = set()
        size = page_size or self.options.page_size
        for _page in range(MAX_PAGES):
            params = dict(query or {})
            if size:
                params["pageSize"] = size
            if token:
                params["pageToken"] = token
            answer = self.request("GET", service, path, params)
            self.stats.pages += 1
            page = answer.get(key) if isinstance(answer, dict) else None
            if page is None:
                page = []
            if not isinstance(page, list):
                raise EsetApiError(200, "GET", self.url(service, path, params), json.dumps(answer)[:500],
                                   message=f"{key!r} is not a list", secrets=self._secrets)
            items.extend(page)
            token = answer.get("nextPageToken") or ""
            if not token:
                return items
            if token in seen:
                raise EsetApiError(200, "GET", self.url(service, path, params), "", None, secrets=self._secrets,
                                   message=f"the server repeated page token {token!r}")
            seen.add(token)
        raise EsetApiError(200, "GET", self.url(service, path), "", None, message=f"more than {MAX_PAGES} pages")
