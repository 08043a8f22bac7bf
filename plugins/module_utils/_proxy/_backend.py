# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# What the engine needs from a proxy backend (squid, Apache httpd).
from __future__ import annotations

import abc
import os
import typing as t

from .._host._run import Runner
from ._conf import Directive
from ._model import MANAGED_NAME, Limit, ProxyRequest


class Backend(abc.ABC):
    name: str = ""
    binaries: t.Tuple[str, ...] = ()
    default_configs: t.Tuple[str, ...] = ()
    limits_tradeoff: str = ""

    def find_binary(self, runner: Runner) -> t.Optional[str]:
        for name in self.binaries:
            path = runner.which(name)
            if path:
                return path
        return None

    def default_config(self) -> t.Optional[str]:
        return next((p for p in self.default_configs if os.path.isfile(p)), None)

    def snippet_path(self, config_path: str) -> str:
        return os.path.join(os.path.dirname(config_path), f"{MANAGED_NAME}.conf")

    @abc.abstractmethod
    def is_running(self, runner: Runner, binary: str, config_path: str) -> t.Tuple[bool, str]:
        """(running, how it was told)."""

    def preflight(self, runner: Runner, binary: str, config_path: str, request: ProxyRequest) -> t.List[str]:
        """Raise ProxyError when the proxy cannot carry CONNECT at all; return warnings."""
        return []

    def check_request(self, request: ProxyRequest) -> None:
        """Raise ProxyError for a setting this proxy cannot express (before anything runs or changes)."""
        return None

    def site_denies(self, request: ProxyRequest, baseline: t.Sequence[Directive],
                    host: t.Optional[str] = None) -> t.List[str]:
        """The site's own rules that deny CONNECT to the EPNS name (or to host, the ESET PROTECT server, on its
        agent port): they keep winning, so the snippet leaves its allow out; each as `file:line: rule`."""
        return []

    @abc.abstractmethod
    def directives(self, config_path: str, overrides: t.Mapping[str, t.Optional[str]]) -> t.List[Directive]:
        """Server-wide directives in the order the proxy reads them."""

    @abc.abstractmethod
    def include_line(self, snippet_path: str) -> str: ...

    @abc.abstractmethod
    def include_position(self, lines: t.Sequence[str]) -> int: ...

    @abc.abstractmethod
    def snippet(self, request: ProxyRequest, baseline: t.Sequence[Directive], limits: t.Sequence[Limit]) -> str:
        """The managed snippet; baseline is the configuration without it, limits its current limits."""

    @abc.abstractmethod
    def limits(self, directives: t.Sequence[Directive]) -> t.List[Limit]: ...

    @abc.abstractmethod
    def validate_argv(self, binary: str, config_path: str, server_root: str) -> t.List[str]: ...

    @abc.abstractmethod
    def reload_argv(self, binary: str, config_path: str, server_root: str) -> t.List[str]: ...

    def server_root(self, config_path: str) -> str:
        return os.path.dirname(config_path)

    @staticmethod
    def failed(rc: int, out: str, err: str) -> bool:
        return rc != 0
