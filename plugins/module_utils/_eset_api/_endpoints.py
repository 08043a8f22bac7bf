# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""Where each ESET PROTECT API lives: one origin On-Prem, one host per service and region in the cloud."""
from __future__ import annotations

import typing as t
from urllib.parse import urlsplit

from .._hostname import HostNameError, check_host
from ._errors import EsetConfigError

ON_PREM = "on_prem"
CLOUD = "cloud"
DEPLOYMENTS = (ON_PREM, CLOUD)
REGIONS = ("eu", "de", "us", "jpn", "ca")
ON_PREM_PORT = 9443
# The service that issues tokens: ESET Connect's OAuth host; On-Prem answers POST /GetTokens on its one origin.
AUTH_SERVICE = "business-account"
# "configuration": On-Prem's server settings calls (POST /v2/configuration:batchGetValues), used by wol_multicast.
SERVICES = ("policy-management", "device-management", AUTH_SERVICE, "iam", "configuration")
OVERRIDE_DEFAULT = "default"
# The most items one list page may hold (ESET-FACTS §3): asking for this many keeps the number of pages minimal.
PAGE_LIMITS = {ON_PREM: 10000, CLOUD: 1000}


def _check_base(name: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise EsetConfigError(f"api_urls.{name}: {url!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise EsetConfigError(f"api_urls.{name}: a URL must not carry credentials")
    if parts.query or parts.fragment:
        raise EsetConfigError(f"api_urls.{name}: {url!r} must not have a query or fragment")
    return url.rstrip("/")


class Endpoints:
    """Base URL per service and the token URL, for one deployment."""

    def __init__(self, deployment: str, server: t.Optional[str] = None, port: int = ON_PREM_PORT,
                 region: t.Optional[str] = None, api_urls: t.Optional[t.Mapping[str, str]] = None) -> None:
        if deployment not in DEPLOYMENTS:
            raise EsetConfigError(
                "deployment must be one of {}, not {!r}".format(", ".join(DEPLOYMENTS), deployment))
        self.deployment = deployment
        overrides = dict(api_urls or {})
        for key in overrides:
            if key not in SERVICES and key != OVERRIDE_DEFAULT:
                raise EsetConfigError("api_urls: unknown service {!r} (known: {}, {})".format(
                    key, ", ".join(SERVICES), OVERRIDE_DEFAULT))
        self.overrides = {k: _check_base(k, v) for k, v in overrides.items()}
        self.region = region
        self.origin: t.Optional[str] = None
        if deployment == ON_PREM:
            if not server and not self.overrides:
                raise EsetConfigError("deployment on_prem needs server (or ESET_PROTECT_SERVER)")
            if server:
                try:
                    host = check_host(server, "server", brackets=True, port_option="port")
                except HostNameError as exc:
                    raise EsetConfigError(str(exc)) from None
                if not 0 < port < 65536:
                    raise EsetConfigError(f"port {port} is not a TCP port")
                host = f"[{host}]" if ":" in host else host
                self.origin = f"https://{host}:{port}"
        else:
            if region not in REGIONS:
                if not all(s in self.overrides for s in ("policy-management", "device-management", AUTH_SERVICE)) \
                        and OVERRIDE_DEFAULT not in self.overrides:
                    raise EsetConfigError("deployment cloud needs region, one of {} (or ESET_PROTECT_REGION)".format(
                        ", ".join(REGIONS)) if region is None else "region {!r} is not one of {}".format(
                        region, ", ".join(REGIONS)))

    def base(self, service: str) -> str:
        if service in self.overrides:
            return self.overrides[service]
        if OVERRIDE_DEFAULT in self.overrides:
            return self.overrides[OVERRIDE_DEFAULT]
        if self.deployment == ON_PREM:
            if self.origin is None:
                raise EsetConfigError(f"no base URL for {service}: set server or api_urls.{service}")
            return self.origin
        if service == AUTH_SERVICE:
            return f"https://{self.region}.business-account.iam.eset.systems"
        return f"https://{self.region}.{service}.eset.systems"

    def token_url(self) -> str:
        if self.deployment == ON_PREM:
            return self.base(AUTH_SERVICE) + "/GetTokens"
        return self.base(AUTH_SERVICE) + "/oauth/token"
