"""Which handler serves a call, per deployment.

On-Prem: one origin; every route sits at the root. Cloud (ESET Connect): one host per service,
`https://{region}.{service}.eset.systems`; the emulator's single listener tells services apart by the
`Host` header (`<region>.<service>.eset.systems`) or, for clients that cannot set it, by a first path
segment naming the service: `https://127.0.0.1:PORT/<service>/v2/policies`. A route called on the wrong
service is a 404, as it would be on the real hosts.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from . import api_auth, api_config, api_devices, api_policies
from .call import Call

if TYPE_CHECKING:
    from .server import Emulator

Handler = Callable[["Emulator", Call], Tuple[int, Any]]

IAM, POLICY, DEVICE = "business-account.iam", "policy-management", "device-management"
SERVICES = (IAM, POLICY, DEVICE)
CLOUD_HOST_RE = re.compile(r"^(?P<region>[a-z]+)\.(?P<service>[a-z.-]+?)\.eset\.systems(:\d+)?$")
UUID = r"(?P<uuid>[^/:]+)"


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    handler: Handler
    service: Optional[str]  # cloud service that serves it; None = On-Prem only
    deployments: Tuple[str, ...] = ("onprem", "cloud")
    auth: bool = True

    def match(self, path: str) -> Optional[Dict[str, str]]:
        found = re.fullmatch(self.pattern, path)
        return found.groupdict() if found else None


ROUTES: List[Route] = [
    Route("POST", r"/GetTokens", api_auth.get_tokens, None, ("onprem",), auth=False),
    Route("POST", r"/oauth/token", api_auth.oauth_token, IAM, ("cloud",), auth=False),
    Route("GET", r"/v2/policies", api_policies.list_policies, POLICY),
    Route("POST", r"/v2/policies", api_policies.create_policy, POLICY),
    Route("GET", rf"/v2/policies/{UUID}", api_policies.get_policy, POLICY),
    Route("DELETE", rf"/v2/policies/{UUID}", api_policies.delete_policy, POLICY),
    Route("GET", r"/v2/policy-assignments", api_policies.list_assignments, POLICY),
    Route("POST", r"/v2/policy-assignments", api_policies.assign, POLICY),
    Route("GET", rf"/v2/policy-assignments/{UUID}", api_policies.get_assignment, POLICY),
    Route("DELETE", rf"/v2/policy-assignments/{UUID}", api_policies.unassign, POLICY),
    Route("POST", rf"/v2/policy-assignments/{UUID}:updateRanking", api_policies.update_ranking, POLICY),
    Route("GET", r"/v1/device_groups", api_devices.list_groups, DEVICE),
    Route("GET", rf"/v1/device_groups/{UUID}/devices", api_devices.group_devices, DEVICE),
    Route("GET", r"/v1/devices", api_devices.list_devices, DEVICE),
    Route("GET", rf"/v1/devices/{UUID}", api_devices.get_device, DEVICE),
    Route("POST", r"/v2/configuration:batchGetValues", api_config.batch_get, None, ("onprem",)),
]


def split_service(deployment: str, host: str, path: str) -> Tuple[Optional[str], str]:
    """(cloud service or None, API path without the service prefix)."""
    if deployment != "cloud":
        return None, path
    first, _, rest = path.lstrip("/").partition("/")
    if first in SERVICES:
        return first, "/" + rest
    found = CLOUD_HOST_RE.match(host.lower())
    if found and found.group("service") in SERVICES:
        return found.group("service"), path
    return None, path


def resolve(routes: List[Route], deployment: str, service: Optional[str], method: str,
            path: str) -> Tuple[Optional[Route], Dict[str, str], List[str]]:
    """(route, path parameters, methods allowed on the path when the method is wrong)."""
    allowed = []
    for route in routes:
        if deployment not in route.deployments:
            continue
        if deployment == "cloud" and route.service != service:
            continue
        params = route.match(path)
        if params is None:
            continue
        if route.method == method:
            return route, params, []
        allowed.append(route.method)
    return None, {}, allowed


def routes_for(config_write_path: Optional[str], onprem_version: str = "13.1") -> List[Route]:
    routes = list(ROUTES)
    if _version(onprem_version) < (13, 1):  # configuration calls appeared in On-Prem 13.1
        routes = [r for r in routes if "configuration" not in r.pattern]
    elif config_write_path:
        routes.append(Route("POST", re.escape(config_write_path), api_config.batch_set, None, ("onprem",)))
    return routes


def _version(text: str) -> Tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:2])
