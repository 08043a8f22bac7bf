"""What a test needs to drive a running emulator from outside: its control API, and the ``eset_api`` options
that point a module at it."""
from __future__ import annotations

import json
import ssl
import typing as t
import urllib.request

if t.TYPE_CHECKING:
    from .server import Emulator


def control(emu: Emulator, method: str, path: str, body: t.Any = None) -> t.Any:
    """One call of the control API (``/_emulator/<path>``, see control.py); its JSON answer."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(emu.url + "/_emulator/" + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, context=ssl.create_default_context(cafile=emu.ca_path)) as answer:
        return json.loads(answer.read() or b"{}")


def connection(emu: Emulator) -> t.Dict[str, t.Any]:
    """The deployment, api_urls and ca_path options of a policy module talking to ``emu`` (no credentials)."""
    if emu.deployment == "onprem":
        return {"deployment": "on_prem", "api_urls": {"default": emu.url}, "ca_path": emu.ca_path}
    urls = emu.base_urls
    return {"deployment": "cloud", "ca_path": emu.ca_path,
            "api_urls": {"business-account": urls["business-account.iam"],
                         "policy-management": urls["policy-management"],
                         "device-management": urls["device-management"]}}
