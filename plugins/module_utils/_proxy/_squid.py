# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# squid: the managed snippet is included before the first http_access line of the main file, so its narrow
# `allow CONNECT` for the agents' networks and the EPNS ports is seen before Debian's `deny CONNECT !SSL_ports`.
# http_access is first-match, and ACL names are prefixed, so nothing the file already had changes meaning.
# `squid -k parse` validates, `squid -k reconfigure` reloads (established CONNECT tunnels stay open).
from __future__ import annotations

import os
import typing as t

from ._backend import Backend
from ._conf import Directive, first_directive_index, walk
from ._model import MANAGED_NAME, SNIPPET_HEADER, Limit, Runner, Settings, squid_seconds

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


def acl(name: str) -> str:
    return f"{MANAGED_NAME}_{name}"


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

    def snippet(self, settings: Settings, baseline: t.Sequence[Directive], limits: t.Sequence[Limit]) -> str:
        ports = " ".join(str(p) for p in settings.ports)
        out = [SNIPPET_HEADER.rstrip("\n"),
               f"acl {acl('src')} src {' '.join(settings.allowed_sources)}",
               f"acl {acl('ports')} port {ports}",
               f"acl {acl('connect')} method CONNECT"]
        base = f"http_access allow {acl('connect')} {acl('src')} {acl('ports')}"
        rules = []
        if not settings.restrict_to_epns:
            rules.append(base)
        else:
            if settings.epns_host:
                out.append(f"acl {acl('name')} dstdomain {settings.epns_host}")
                rules.append(f"{base} {acl('name')}")
            if settings.destinations:
                out.append(f"acl {acl('addr')} dst {' '.join(settings.destinations)}")
                rules.append(f"{base} {acl('addr')}")
        out += rules
        if settings.raise_idle_timeouts:
            targets = {IDLE: settings.idle_timeout, LIFETIME: settings.connection_lifetime}
            for limit in limits:
                target = targets.get(limit.name)
                if target is not None and (limit.seconds is None or limit.seconds < target):
                    out.append(f"{limit.name} {target} seconds")
        out += list(settings.extra_directives)
        return "\n".join(out) + "\n"

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
