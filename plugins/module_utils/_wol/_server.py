# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""The Wake-on-LAN addresses in the ESET PROTECT Server's settings: read where the server offers a configuration
API, write where a write call is named in the settings map, otherwise say exactly what a person must enter."""
from __future__ import annotations

import typing as t

from .._eset_api._errors import EsetApiError

ON_PREM = "on_prem"


class Requester(t.Protocol):
    settings: t.Any

    def request(self, method: str, service: str, path: str, query: t.Optional[t.Mapping[str, t.Any]] = None,
                body: t.Any = None, idempotent: t.Optional[bool] = None) -> t.Any: ...


def _as_list(value: t.Any) -> t.Optional[t.List[str]]:
    if value is None:
        return None
    if isinstance(value, str):
        value = [v for v in value.replace(";", ",").replace(" ", ",").split(",") if v]
    if isinstance(value, dict):  # a wrapper object such as {"addresses": [...]}
        for key in ("addresses", "values", "items", "value"):
            if key in value:
                return _as_list(value[key])
        return None
    return [str(v) for v in value]


def read(client: Requester, smap: t.Mapping[str, t.Any]) -> t.Tuple[t.Optional[t.List[str]], str]:
    """(current addresses or None, how they were read or why not)."""
    path = smap["addresses_path"]
    try:
        answer = client.request("POST", smap["service"], smap["read_path"], body={"paths": [path]},
                                idempotent=True)  # a read
    except EsetApiError as exc:
        if exc.status in (404, 501, 405):
            return None, (f"the server does not offer {smap['read_path']} or does not know the setting {path!r} "
                          f"(HTTP {exc.status}; On-Prem 13.1+ has the read call, the path is not documented)")
        raise
    for item in (answer or {}).get("values") or []:
        if item.get("path") == path:
            return _as_list(item.get("value")) or [], f"read {path} with {smap['read_path']}"
    return None, f"{smap['read_path']} answered without a value for {path!r}"


def same(current: t.Optional[t.Sequence[str]], wanted: t.Sequence[str]) -> bool:
    return current is not None and sorted(set(current)) == sorted(set(wanted)) and len(current) == len(set(current))


def apply(client: Requester, smap: t.Mapping[str, t.Any], wanted: t.List[str], check_mode: bool) -> t.Dict[str, t.Any]:
    """The server half of wol_multicast: {current, in_sync, applied, changed, write_call, read, action_required}."""
    out: t.Dict[str, t.Any] = {"setting": smap["addresses_path"], "wanted": list(wanted), "current": None,
                               "read": None, "in_sync": False, "applied": False, "changed": False,
                               "write_call": smap.get("write_path"), "action_required": None}
    deployment = getattr(client.settings, "deployment", ON_PREM)
    if deployment != ON_PREM:
        out["read"] = "ESET PROTECT Cloud has no public configuration API"
    else:
        out["current"], out["read"] = read(client, smap)
    if same(out["current"], wanted):
        out.update(in_sync=True, applied=True)
        return out
    write_path = smap.get("write_path") if deployment == ON_PREM else None
    if write_path:
        if check_mode:
            out.update(changed=True, applied=True)
            return out
        try:
            client.request("POST", smap["service"], write_path,
                           body={"values": [{"path": smap["addresses_path"], "value": list(wanted)}]},
                           idempotent=True)  # sets the values: repeating it is safe
        except EsetApiError as exc:
            if exc.status not in (404, 405, 501):
                raise
            out["write_error"] = f"the server does not offer the write call {write_path} (HTTP {exc.status})"
        else:
            after, _how = read(client, smap)
            if after is not None and not same(after, wanted):
                raise EsetApiError(200, "POST", write_path, message=(
                    f"the server accepted the write but {smap['addresses_path']} now reads {after}, not {wanted}"))
            out.update(changed=True, applied=True, current_after=after)
            return out
    reason = out.get("write_error") or ("no public ESET PROTECT API call writes server settings"
                                        if not write_path else "")
    out["action_required"] = action_required(smap, wanted, out["current"], reason)
    return out


def action_required(smap: t.Mapping[str, t.Any], wanted: t.Sequence[str], current: t.Optional[t.Sequence[str]],
                    reason: str) -> t.Dict[str, t.Any]:
    return {
        "reason": reason,
        "where": smap["console_location"],
        "values": list(wanted),
        "text": "\n".join(wanted),
        "setting": smap["addresses_path"],
        "current": list(current) if current is not None else None,
        "message": f"Enter these Wake-on-LAN multicast addresses in {smap['console_location']}: "
                   + ", ".join(wanted) + f" ({reason})",
    }
