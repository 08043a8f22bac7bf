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
# Answers that mean "this server does not offer the call or does not know the (unconfirmed) setting path": the
# setting then has to be entered by hand, which is not a failure of the run.
REFUSED_STATUSES = (400, 404, 405, 501)
# ESET does not document which permission the configuration calls check; the console's permission sets grant
# "Server Settings" (Admin functionality) with Read / Write access, the nearest match.
PERMISSION = "\"Server Settings\" ({access} access; More > Permission Sets > Functionality > Admin in the Web Console)"


class PermissionMissing(EsetApiError):
    """A 403 to a configuration call: names the API user and the permission it lacks."""

    def __init__(self, exc: EsetApiError, user: str, access: str, action: t.Dict[str, t.Any]) -> None:
        needs = PERMISSION.format(access=access)
        super().__init__(exc.status, exc.method, exc.url, exc.body, exc.request_id, message=(
            f"the API user {user!r} lacks the permission to {access.lower()} the server settings: its permission "
            f"set needs {needs}"))
        self.action_required = action


class Requester(t.Protocol):
    options: t.Any

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


def _answer(exc: EsetApiError) -> str:
    """The server's answer to a refused call, in its own words (a bare status when the body is empty)."""
    body = exc.body.strip()
    return "HTTP {}{}, request-id {}".format(exc.status, f": {body}" if body else " with an empty body",
                                             exc.request_id or "none")


def _user(client: Requester) -> str:
    return str(getattr(client.options, "username", "") or "?")


def read(client: Requester, settings_map: t.Mapping[str, t.Any],
         wanted: t.Sequence[str] = ()) -> t.Tuple[t.Optional[t.List[str]], str, t.Optional[EsetApiError]]:
    """(current addresses or None, how they were read or why not, the refused call's error or None)."""
    path = settings_map["addresses_path"]
    try:
        answer = client.request("POST", settings_map["service"], settings_map["read_path"], body={"paths": [path]},
                                idempotent=True)  # a read
    except EsetApiError as exc:
        if exc.status in REFUSED_STATUSES:
            return None, (f"the server does not offer {settings_map['read_path']} or does not know the setting "
                          f"{path!r} "
                          "(On-Prem 13.1+ has the read call; the setting path is not documented); the server "
                          f"answered {_answer(exc)}"), exc
        if exc.status == 403:
            raise PermissionMissing(exc, _user(client), "Read", action_required(
                settings_map, wanted, None, f"the API user cannot read the server settings ({_answer(exc)})")) from None
        raise
    for item in (answer or {}).get("values") or []:
        if item.get("path") == path:
            return _as_list(item.get("value")) or [], f"read {path} with {settings_map['read_path']}", None
    return None, f"{settings_map['read_path']} answered without a value for {path!r}", None


def same(current: t.Optional[t.Sequence[str]], wanted: t.Sequence[str]) -> bool:
    return current is not None and sorted(set(current)) == sorted(set(wanted)) and len(current) == len(set(current))


def apply(client: Requester, settings_map: t.Mapping[str, t.Any], wanted: t.List[str],
          check_mode: bool) -> t.Dict[str, t.Any]:
    """The server half of wol_multicast: {current, in_sync, applied, changed, write_call, read, action_required}."""
    out: t.Dict[str, t.Any] = {"setting": settings_map["addresses_path"], "wanted": list(wanted), "current": None,
                               "read": None, "in_sync": False, "applied": False, "changed": False,
                               "write_call": settings_map.get("write_path"), "action_required": None}
    deployment = getattr(client.options, "deployment", ON_PREM)
    if deployment != ON_PREM:
        out["read"] = "ESET PROTECT Cloud has no public configuration API"
    else:
        out["current"], out["read"], refused = read(client, settings_map, wanted)
        if refused is not None:
            out["read_error"] = refused.to_dict()
    if same(out["current"], wanted):
        out.update(in_sync=True, applied=True)
        return out
    write_path = settings_map.get("write_path") if deployment == ON_PREM else None
    if write_path:
        if check_mode:
            out.update(changed=True, applied=True)
            return out
        try:
            client.request("POST", settings_map["service"], write_path,
                           body={"values": [{"path": settings_map["addresses_path"], "value": list(wanted)}]},
                           idempotent=True)  # sets the values: repeating it is safe
        except EsetApiError as exc:
            if exc.status == 403:
                raise PermissionMissing(exc, _user(client), "Write", action_required(
                    settings_map, wanted, out["current"],
                    f"the API user cannot write the server settings ({_answer(exc)})")
                ) from None
            if exc.status not in REFUSED_STATUSES:
                raise
            out["write_error"] = f"the server does not offer the write call {write_path} ({_answer(exc)})"
        else:
            after, _how, _refused = read(client, settings_map)
            if after is not None and not same(after, wanted):
                raise EsetApiError(200, "POST", write_path, message=(
                    f"the server accepted the write but {settings_map['addresses_path']} now reads {after}, "
                    f"not {wanted}"))
            out.update(changed=True, applied=True, current_after=after)
            return out
    reason = out.get("write_error") or ("no public ESET PROTECT API call writes server settings"
                                        if not write_path else "")
    if out.get("read_error"):
        reason = "; ".join(r for r in (out["read"], reason) if r)
    out["action_required"] = action_required(settings_map, wanted, out["current"], reason)
    return out


def action_required(settings_map: t.Mapping[str, t.Any], wanted: t.Sequence[str], current: t.Optional[t.Sequence[str]],
                    reason: str) -> t.Dict[str, t.Any]:
    return {
        "reason": reason,
        "where": settings_map["console_location"],
        "values": list(wanted),
        "text": "\n".join(wanted),
        "setting": settings_map["addresses_path"],
        "current": list(current) if current is not None else None,
        "message": f"Enter these Wake-on-LAN multicast addresses in {settings_map['console_location']}: "
                   + ", ".join(wanted) + f" ({reason})",
    }
