# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# squid: the managed snippet is included before the first http_access line of the main file, so its one narrow
# `allow CONNECT` (the agents' networks, the EPNS ports, the EPNS name) is seen before Debian's `deny CONNECT
# !SSL_ports` and before any authentication rule (EPNS cannot authenticate to a proxy). http_access is first-match,
# so that allow must not match anything else: every other request reaches the site's rules exactly as before, and a
# site deny that names EPNS makes the module leave the allow out (and say so) rather than jump ahead of it.
# ACL names are prefixed, so nothing the file already had changes meaning.
# `squid -k parse` validates, `squid -k reconfigure` reloads (established CONNECT tunnels stay open).
from __future__ import annotations

import ipaddress
import os
import re
import typing as t

from .._host._run import Runner
from ._backend import Backend
from ._conf import Directive, first_directive_index, read_config, walk
from ._model import MANAGED_NAME, SNIPPET_HEADER, Limit, ProxyRequest, is_address, squid_seconds

IDLE = "read_timeout"
LIFETIME = "client_lifetime"
DEFAULTS = {IDLE: "15 minutes", LIFETIME: "1 day"}
EXPLAIN = {
    IDLE: "squid closes a CONNECT tunnel when no data arrives from the server side for this long. EPNS keeps its "
          "connection alive with MQTT pings; pings further apart than this get the tunnel cut, and the agent "
          "reconnects (wake-up calls sent in between arrive late or not at all).",
    LIFETIME: "The longest any client connection, a CONNECT tunnel included, may stay open, busy or not; when it "
              "ends, the agent reconnects.",
}
TRADEOFF = ("squid applies read_timeout and client_lifetime to every connection, not only to EPNS tunnels: raising "
            "them lets stale or half-dead connections hold file descriptors and memory longer. Watch the file "
            "descriptor use (squidclient mgr:info) on busy proxies and raise max_filedescriptors if needed.")


# ACL types that match the name a client wrote in its CONNECT request.
NAME_ACL_TYPES = ("dstdomain", "dstdom_regex", "ssl::server_name", "ssl::server_name_regex")


def acl(name: str) -> str:
    return f"{MANAGED_NAME}_{name}"


def _acl_values(args: t.Sequence[str], base: str) -> t.Tuple[t.List[str], bool]:
    """An acl line's values after its name and type (files named in quotes read, one value a line), and -i."""
    values: t.List[str] = []
    ignore_case = False
    for arg in args:
        if arg in ("-i", "+i"):
            ignore_case = arg == "-i"
        elif arg.startswith("-") and len(arg) == 2:
            continue
        elif len(arg) > 1 and arg[0] == arg[-1] == '"':
            path = arg[1:-1] if os.path.isabs(arg[1:-1]) else os.path.join(base, arg[1:-1])
            text = read_config(path) or ""
            values += [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
        else:
            values.append(arg)
    return values, ignore_case


def _names_host(acl_type: str, values: t.Sequence[str], ignore_case: bool, host: str) -> bool:
    if acl_type.endswith("_regex"):
        flags = re.IGNORECASE if ignore_case else 0
        for value in values:
            try:
                if re.search(value, host, flags):
                    return True
            except re.error:
                continue
        return False
    return any(host == v.lower().lstrip(".") or (v.startswith(".") and host.endswith(v.lower())) for v in values)


def _holds_address(values: t.Sequence[str], host: str) -> bool:
    address = ipaddress.ip_address(host)
    for value in values:
        try:
            if address in ipaddress.ip_network(value, strict=False):
                return True
        except ValueError:
            continue
    return False


def acls_naming(directives: t.Sequence[Directive], host: str) -> t.Set[str]:
    """The names of the ACLs that match host by the name a client wrote (dstdomain and the like), or for an
    address (the ESET PROTECT server may be one) the `dst` ACLs that hold it."""
    out: t.Set[str] = set()
    address = is_address(host)
    for d in directives:
        if d.name.lower() != "acl" or len(d.args) < 3:
            continue
        kind = d.args[1].lower()
        if kind in NAME_ACL_TYPES or (address and kind == "dst"):
            values, ignore_case = _acl_values(d.args[2:], os.path.dirname(d.path))
            if _holds_address(values, host) if kind == "dst" else _names_host(kind, values, ignore_case, host):
                out.add(d.args[0])
    return out


class Squid(Backend):
    name = "squid"
    binaries = ("squid", "squid3")
    default_configs = ("/etc/squid/squid.conf", "/etc/squid3/squid.conf", "/usr/local/squid/etc/squid.conf")
    limits_tradeoff = TRADEOFF

    def is_running(self, runner: Runner, binary: str, config_path: str) -> t.Tuple[bool, str]:
        rc, out, err = runner.run([binary, "-k", "check", "-f", config_path])
        text = (err or out).strip().splitlines()
        return rc == 0, f"{binary} -k check: {'running' if rc == 0 else (text[-1] if text else f'rc={rc}')}"

    def directives(self, config_path: str, overrides: t.Mapping[str, t.Optional[str]]) -> t.List[Directive]:
        return list(walk(config_path, overrides, lambda n: n.lower() == "include", os.path.dirname(config_path)))

    def include_line(self, snippet_path: str) -> str:
        return f"include {snippet_path}"

    def include_position(self, lines: t.Sequence[str]) -> int:
        """Before the first http_access rule (first match wins), else before the first include, else at the end."""
        for names in (("http_access",), ("include",)):
            index = first_directive_index(lines, names)
            if index is not None:
                return index
        return len(lines)

    def site_denies(self, request: ProxyRequest, baseline: t.Sequence[Directive],
                    host: t.Optional[str] = None) -> t.List[str]:
        """The site's `http_access deny` rules that name the EPNS host, or host (file:line and the rule)."""
        host = request.epns_host if host is None else host
        if not host:
            return []
        naming = acls_naming(baseline, host)
        return [f"{d.source}: http_access {d.value}" for d in baseline
                if d.name.lower() == "http_access" and d.args and d.args[0].lower() == "deny"
                and any(name in naming for name in d.args[1:])]

    def snippet(self, request: ProxyRequest, baseline: t.Sequence[Directive], limits: t.Sequence[Limit]) -> str:
        ports = " ".join(str(p) for p in request.ports)
        out = [SNIPPET_HEADER.rstrip("\n"),
               f"acl {acl('src')} src {' '.join(request.allowed_sources)}",
               f"acl {acl('ports')} port {ports}",
               f"acl {acl('connect')} method CONNECT"]
        base = f"http_access allow {acl('connect')} {acl('src')} {acl('ports')}"
        if request.allow_connect_to_any_host:
            out += ["# allow_connect_to_any_host: the agents' networks may CONNECT to these ports on any host, ahead",
                    "# of every rule of the site", base]
        else:
            out += self._epns_only(request, baseline, base)
        out += self._server_only(request, baseline)
        if request.raise_idle_timeouts:
            targets = {IDLE: request.idle_timeout, LIFETIME: request.connection_lifetime}
            for limit in limits:
                target = targets.get(limit.name)
                if target is not None and (limit.seconds is None or limit.seconds < target):
                    out.append(f"{limit.name} {target} seconds")
        out += list(request.extra_directives)
        return "\n".join(out) + "\n"

    def _epns_only(self, request: ProxyRequest, baseline: t.Sequence[Directive], base: str) -> t.List[str]:
        """The ACLs and the allow rules for CONNECT to EPNS only; none while a site deny names EPNS."""
        out, rules = [], []
        if request.epns_host:
            # -n: match the name the agent wrote, never a reverse lookup of an address it wrote instead
            out.append(f"acl {acl('name')} dstdomain -n {request.epns_host}")
            rules.append(f"{base} {acl('name')}")
        if request.destinations:
            out.append(f"acl {acl('addr')} dst {' '.join(request.destinations)}")
            rules.append(f"{base} {acl('addr')}")
        denies = self.site_denies(request, baseline)
        if denies:
            return [*out, "# no allow: a rule of the site denies EPNS, and it keeps winning:",
                    *(f"#   {rule}" for rule in denies)]
        return out + rules

    def _server_only(self, request: ProxyRequest, baseline: t.Sequence[Directive]) -> t.List[str]:
        """CONNECT from the agents' networks to the ESET PROTECT server on its agent port, and nothing more."""
        if not request.eset_server:
            return []
        # dst for an address (what squid connects to), the written name otherwise, as for EPNS.
        kind = "dst" if is_address(request.eset_server) else "dstdomain -n"
        out = ["# the agents' networks may CONNECT to the ESET PROTECT server on its agent port",
               f"acl {acl('server_port')} port {request.eset_server_port}",
               f"acl {acl('server')} {kind} {request.eset_server}"]
        denies = self.site_denies(request, baseline, request.eset_server)
        if denies:
            return [*out, "# no allow: a rule of the site denies the ESET PROTECT server, and it keeps winning:",
                    *(f"#   {rule}" for rule in denies)]
        return [*out, f"http_access allow {acl('connect')} {acl('src')} {acl('server_port')} {acl('server')}"]

    def limits(self, directives: t.Sequence[Directive]) -> t.List[Limit]:
        found: t.Dict[str, Directive] = {}
        for d in directives:
            if d.name.lower() in DEFAULTS:
                found[d.name.lower()] = d  # the last one wins
        out = []
        for name, default in DEFAULTS.items():
            last = found.get(name)
            value = last.value if last else default
            out.append(Limit(name, value, squid_seconds(value), last.source if last else "default",
                             "idle" if name == IDLE else "lifetime", EXPLAIN[name]))
        return out

    def validate_argv(self, binary: str, config_path: str, server_root: str) -> t.List[str]:
        return [binary, "-k", "parse", "-f", config_path]

    def reload_argv(self, binary: str, config_path: str, server_root: str) -> t.List[str]:
        return [binary, "-k", "reconfigure", "-f", config_path]
