# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# Apache httpd with mod_proxy_connect (ESET's older "Apache HTTP Proxy"). The managed snippet is included at the
# end of the main file: AllowCONNECT adds ports to the list (an empty list means Apache's default, 443 and 563),
# and <ProxyMatch> sections merge in file order, so ours come last. AllowCONNECT is server-wide, so a port it newly
# allows is first denied for every destination; then one section with `AuthMerging Or` lets the agents' networks
# CONNECT to the EPNS name on the EPNS ports (on top of whatever the existing <Proxy> rules allow there, which for a
# newly allowed port is nothing). A site rule that denies the EPNS name keeps winning: no allow section then.
# `apachectl -t` validates, `apachectl -k graceful` reloads: old workers keep serving their established tunnels.
from __future__ import annotations

import fnmatch
import ipaddress
import os
import re
import typing as t

from .._host._run import Runner
from ._backend import Backend
from ._conf import Directive, walk
from ._model import SNIPPET_HEADER, Limit, ProxyError, ProxyRequest, human, is_address

DEFAULT_TIMEOUT = 60
TRADEOFF = ("Timeout is server-wide in Apache: a higher value lets stalled clients hold a worker thread longer "
            "(mod_reqtimeout still bounds how long reading a request may take). ProxyTimeout applies to every "
            "proxied backend connection. Apache has no maximum age for a tunnel.")
EXPLAIN = {
    "Timeout": "Apache closes a CONNECT tunnel after this long without data on the client side (2.4 uses the "
               "lower of Timeout and ProxyTimeout for the whole tunnel). EPNS pings further apart than this get "
               "the tunnel cut, and the agent reconnects.",
    "ProxyTimeout": "The idle limit on the backend side of the tunnel; defaults to Timeout.",
    "effective": "The idle limit a CONNECT tunnel actually gets: the lower of Timeout and ProxyTimeout.",
}
URL_PREFIX = "^(?i)(?:[a-z][a-z0-9+.-]*://)?(?:[^/@]*@)?"
URL_SUFFIX = "(?:/.*)?$"
NOT_EPNS = "unrelated.invalid"  # a name no site rule is about: tells a rule about EPNS from one about all


def _denies(require: Directive) -> bool:
    return bool(require.args) and (require.value.lower() == "all denied" or require.args[0].lower() == "not")


def _section_names(section: Directive, host: str, port: int = 8883) -> bool:
    """Whether a <Proxy>/<ProxyMatch> section is about host in particular (not about every host)."""
    pattern = section.value.rstrip(">").strip().strip("\"'")

    def matches(name: str) -> bool:
        target = f"{name}:{port}"
        if section.name.lower() == "<proxymatch":
            try:
                return re.search(pattern, target) is not None
            except re.error:
                return False
        return fnmatch.fnmatchcase(target, pattern) or fnmatch.fnmatchcase(name, pattern)

    return matches(host) and not matches(NOT_EPNS)


def _alternation(items: t.Sequence[str]) -> str:
    return items[0] if len(items) == 1 else "(?:" + "|".join(items) + ")"


def _target(address: str) -> str:
    """How an address appears in a CONNECT target: 1.2.3.4 or [2001:db8::1] (the form the client wrote)."""
    host = address.split("/")[0]
    return re.escape(f"[{host}]" if ":" in host else host)


class Apache(Backend):
    name = "apache"
    binaries = ("apache2ctl", "apachectl")
    default_configs = ("/etc/apache2/apache2.conf", "/etc/httpd/conf/httpd.conf", "/etc/apache2/httpd.conf",
                       "/usr/local/apache2/conf/httpd.conf")
    limits_tradeoff = TRADEOFF

    def server_root(self, config_path: str) -> str:
        for d in walk(config_path, {}, lambda n: False, os.path.dirname(config_path)):
            if d.name.lower() == "serverroot" and d.args:
                return d.args[0].strip("\"'")
        return os.path.dirname(config_path)

    def _argv(self, binary: str, config_path: str, server_root: str, *args: str) -> t.List[str]:
        if config_path in self.default_configs[:1]:
            return [binary, *args]  # Debian's apache2ctl finds it, with its envvars
        return [binary, *args, "-d", server_root, "-f", config_path]

    def is_running(self, runner: Runner, binary: str, config_path: str) -> t.Tuple[bool, str]:
        argv = self._argv(binary, config_path, self.server_root(config_path), "-t", "-D", "DUMP_RUN_CFG")
        rc, out, err = runner.run(argv)
        match = re.search(r'^PidFile:\s*"?([^"\n]+)"?', out, re.MULTILINE)
        if rc != 0 or not match:
            text = (err or out).strip().splitlines()
            raise ProxyError(f"cannot tell whether Apache runs: {' '.join(argv)} failed (rc={rc}): "
                             f"{' | '.join(text[-3:]) if text else 'no output'}")
        pidfile = match.group(1).strip()
        try:
            with open(pidfile, encoding="ascii") as handle:
                pid = int(handle.read().split()[0])
            with open(f"/proc/{pid}/comm", encoding="ascii") as handle:
                comm = handle.read().strip()
        except (OSError, ValueError, IndexError):
            return False, f"no running process for pid file {pidfile}"
        if comm not in ("apache2", "httpd"):
            return False, f"pid file {pidfile} names pid {pid}, which is {comm!r}, not Apache"
        return True, f"pid {pid} from {pidfile}"

    def preflight(self, runner: Runner, binary: str, config_path: str, request: ProxyRequest) -> t.List[str]:
        if request.state == "absent":
            return []
        argv = self._argv(binary, config_path, self.server_root(config_path), "-M")
        rc, out, err = runner.run(argv)
        modules = set(re.findall(r"^\s*(\w+)_module\b", out, re.MULTILINE))
        if rc != 0:
            text = (err or out).strip().splitlines()
            raise ProxyError(f"the current Apache configuration does not load: {' '.join(argv)} (rc={rc}): "
                             f"{' | '.join(text[-3:]) if text else 'no output'}")
        missing = [m for m in ("proxy", "proxy_connect") if m not in modules]
        if missing:
            raise ProxyError(f"Apache does not load mod_{' and mod_'.join(missing)}, so it cannot relay CONNECT; "
                             f"enable {'them' if len(missing) > 1 else 'it'} first (Debian: a2enmod "
                             f"{' '.join(missing)})")
        if "authz_host" not in modules:
            raise ProxyError("Apache does not load mod_authz_host, which `Require ip` needs (a2enmod authz_host)")
        warnings = []
        requests = [d for d in self.directives(config_path, {}) if d.name.lower() == "proxyrequests"]
        if not requests or requests[-1].value.lower() != "on":
            warnings.append("ProxyRequests is not On at server level: Apache is not a forward proxy there, and "
                            "agents cannot use it (a <VirtualHost> may still turn it on)")
        return warnings

    def directives(self, config_path: str, overrides: t.Mapping[str, t.Optional[str]]) -> t.List[Directive]:
        root = self.server_root(config_path)
        return list(walk(config_path, overrides, lambda n: n.lower() in ("include", "includeoptional"), root,
                         skip_section="virtualhost"))

    def include_line(self, snippet_path: str) -> str:
        return f'Include "{snippet_path}"'

    def include_position(self, lines: t.Sequence[str]) -> int:
        return len(lines)

    def check_request(self, request: ProxyRequest) -> None:
        wide = [d for d in request.destinations if ipaddress.ip_network(d).num_addresses > 1]
        if wide:
            raise ProxyError(f"destinations {', '.join(wide)}: Apache matches a CONNECT target as the agent wrote "
                             "it, so a network cannot be matched there; list single addresses (or use squid)")

    def site_denies(self, request: ProxyRequest, baseline: t.Sequence[Directive],
                    host: t.Optional[str] = None) -> t.List[str]:
        port = 8883 if host is None else request.eset_server_port
        host = request.epns_host if host is None else host
        if not host:
            return []
        out: t.List[str] = []
        section: t.Optional[Directive] = None
        for d in baseline:
            lower = d.name.lower()
            if lower == "proxyblock" and any(w == "*" or w.lower() in host for w in d.args):
                out.append(f"{d.source}: ProxyBlock {d.value}")
            elif lower in ("<proxy", "<proxymatch"):
                section = d if _section_names(d, host, port) else None
            elif lower in ("</proxy>", "</proxymatch>"):
                section = None
            elif section and lower == "require" and _denies(d):
                out.append(f"{section.source}: {section.name} {section.value} Require {d.value}")
        return out

    def snippet(self, request: ProxyRequest, baseline: t.Sequence[Directive], limits: t.Sequence[Limit]) -> str:
        explicit: t.List[t.Tuple[int, int]] = []
        for d in baseline:
            if d.name.lower() == "allowconnect":
                for arg in d.args:
                    first, _dash, last = arg.partition("-")
                    if first.isdigit() and (not last or last.isdigit()):
                        explicit.append((int(first), int(last or first)))
        before = explicit or [(443, 443), (563, 563)]
        new_ports = [p for p in request.ports if not any(a <= p <= b for a, b in before)]
        out = [SNIPPET_HEADER.rstrip("\n")]
        server_port = [request.eset_server_port] if request.eset_server else []
        connect = list(request.ports) + server_port + ([] if explicit else [563])
        if explicit:
            out.append("# AllowCONNECT adds to the ports allowed elsewhere in the configuration.")
        else:
            out.append("# No AllowCONNECT was set, so Apache allowed its default (443 563); keep 563 allowed.")
        out.append("AllowCONNECT " + " ".join(str(p) for p in dict.fromkeys(connect)))
        if request.allow_connect_to_any_host:
            out += ["# allow_connect_to_any_host: the agents' networks may CONNECT to these ports on any host,",
                    "# besides whoever the existing <Proxy> rules allow", *self._allow(request, "[^/]*")]
        else:
            out += self._epns_only(request, baseline, new_ports)
        out += self._server_only(request, baseline, before)
        if request.raise_idle_timeouts:
            current = {limit.name: limit.seconds for limit in limits}
            for name in ("Timeout", "ProxyTimeout"):
                seconds = current.get(name)
                if seconds is None or seconds < request.idle_timeout:
                    out.append(f"{name} {request.idle_timeout}")
        out += list(request.extra_directives)
        return "\n".join(out) + "\n"

    @staticmethod
    def _allow(request: ProxyRequest, hosts: str, ports_to: t.Optional[t.Sequence[int]] = None) -> t.List[str]:
        ports = _alternation([str(p) for p in (request.ports if ports_to is None else ports_to)])
        return [f'<ProxyMatch "{URL_PREFIX}{hosts}:{ports}{URL_SUFFIX}">', "    AuthMerging Or",
                f"    Require ip {' '.join(request.allowed_sources)}", "</ProxyMatch>"]

    def _epns_only(self, request: ProxyRequest, baseline: t.Sequence[Directive],
                   new_ports: t.Sequence[int]) -> t.List[str]:
        out = []
        if new_ports:
            out += ["# AllowCONNECT is server-wide: nobody may CONNECT to the newly allowed ports but to EPNS",
                    f'<ProxyMatch "{URL_PREFIX}[^/]*:{_alternation([str(p) for p in new_ports])}{URL_SUFFIX}">',
                    "    Require all denied", "</ProxyMatch>"]
        denies = self.site_denies(request, baseline)
        if denies:
            return [*out, "# no allow: a rule of the site denies EPNS, and it keeps winning:",
                    *(f"#   {rule}" for rule in denies)]
        hosts = ([re.escape(request.epns_host)] if request.epns_host else []) + \
            [_target(a) for a in request.destinations]
        return [*out, "# the agents' networks may CONNECT to EPNS on these ports",
                *self._allow(request, _alternation(hosts))]

    def _server_only(self, request: ProxyRequest, baseline: t.Sequence[Directive],
                     before: t.Sequence[t.Tuple[int, int]]) -> t.List[str]:
        """CONNECT from the agents' networks to the ESET PROTECT server on its agent port, and nothing more."""
        if not request.eset_server:
            return []
        port = request.eset_server_port
        out = []
        if port not in request.ports and not any(a <= port <= b for a, b in before):
            out += ["# AllowCONNECT is server-wide: nobody may CONNECT to the agent port but to the ESET PROTECT "
                    "server",
                    f'<ProxyMatch "{URL_PREFIX}[^/]*:{port}{URL_SUFFIX}">', "    Require all denied", "</ProxyMatch>"]
        denies = self.site_denies(request, baseline, request.eset_server)
        if denies:
            return [*out, "# no allow: a rule of the site denies the ESET PROTECT server, and it keeps winning:",
                    *(f"#   {rule}" for rule in denies)]
        host = _target(request.eset_server) if is_address(request.eset_server) else re.escape(request.eset_server)
        return [*out, "# the agents' networks may CONNECT to the ESET PROTECT server on its agent port",
                *self._allow(request, host, [port])]

    def limits(self, directives: t.Sequence[Directive]) -> t.List[Limit]:
        last: t.Dict[str, Directive] = {}
        for d in directives:
            if d.name.lower() in ("timeout", "proxytimeout"):
                last[d.name.lower()] = d

        def seconds(d: t.Optional[Directive]) -> t.Optional[float]:
            try:
                return float(d.args[0]) if d and d.args else None
            except ValueError:
                return None

        timeout, proxy = last.get("timeout"), last.get("proxytimeout")
        t_sec = seconds(timeout) if timeout else float(DEFAULT_TIMEOUT)
        p_sec = seconds(proxy) if proxy else t_sec
        effective = min(x for x in (t_sec, p_sec) if x is not None) if (t_sec or p_sec) else None
        return [
            Limit("Timeout", timeout.value if timeout else str(DEFAULT_TIMEOUT), t_sec,
                  timeout.source if timeout else "default", "idle", EXPLAIN["Timeout"]),
            Limit("ProxyTimeout", proxy.value if proxy else f"unset (Timeout: {human(t_sec)})", p_sec,
                  proxy.source if proxy else "default", "idle", EXPLAIN["ProxyTimeout"]),
            Limit("effective_idle", human(effective), effective, "computed", "idle", EXPLAIN["effective"]),
            Limit("tunnel_lifetime", "unlimited", None, "built-in", "lifetime",
                  "Apache sets no maximum age for a CONNECT tunnel."),
        ]

    def validate_argv(self, binary: str, config_path: str, server_root: str) -> t.List[str]:
        return [binary, "-t", "-d", server_root, "-f", config_path]

    def reload_argv(self, binary: str, config_path: str, server_root: str) -> t.List[str]:
        return self._argv(binary, config_path, server_root, "-k", "graceful")
