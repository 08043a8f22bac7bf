# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""Where the ESET PROTECT Server keeps its Wake-on-LAN multicast addresses, and how to write them.

THE ONE PLACE TO CHANGE when ESET documents the setting. Override any key per run with the wol_multicast options
``settings_map`` (a dict merged over this one) or ``settings_map_file`` (this map, or the ``wake_on_lan`` section of
the overrides file the playbook ``protectnet.epns.calibrate`` writes).

Facts: the server sends the Wake-on-LAN calls itself, to multicast addresses set in the web console under
More > Settings (ESET PROTECT On-Prem help, page ``epns.html``). ESET PROTECT On-Prem 13.1+ reads settings with
``POST /v2/configuration:batchGetValues`` ``{"paths": [...]}`` (seen only in public client code). **No public
write call is known, and no path for the Wake-on-LAN multicast addresses is known**: the path below is a guess, and
``write_path`` is None, so the module reports ``action_required`` until someone sets both.
"""
from __future__ import annotations

import typing as t

SETTINGS_MAP: t.Dict[str, t.Any] = {
    # Whether this map was checked against a real server (the calibration playbook writes true for what it learnt).
    "confirmed": False,
    # The REST service the configuration calls belong to (On-Prem serves every service on one origin).
    "service": "configuration",
    # Read call: POST <read_path> {"paths": [<addresses_path>]} -> {"values": [{"path", "value"}]}.
    "read_path": "/v2/configuration:batchGetValues",
    # The setting that holds the Wake-on-LAN multicast addresses: a list of address strings. UNVERIFIED GUESS.
    "addresses_path": "server.wakeOnLan.multicastAddresses",
    # Write call: POST <write_path> {"values": [{"path": <addresses_path>, "value": [...]}]}. None: none is known.
    "write_path": None,
    # Where a person enters the addresses when there is no write call (shown in action_required).
    "console_location": "ESET PROTECT Web Console > More > Settings (server settings): the Wake-on-LAN multicast "
                        "addresses",
}

KEYS = tuple(SETTINGS_MAP)


def merged(override: t.Optional[t.Mapping[str, t.Any]]) -> t.Dict[str, t.Any]:
    out = dict(SETTINGS_MAP)
    unknown = sorted(set(override or {}) - set(KEYS))
    if unknown:
        raise ValueError(f"settings_map: unknown key(s) {', '.join(unknown)} (known: {', '.join(KEYS)})")
    out.update(dict(override or {}))
    if not isinstance(out["confirmed"], bool):
        raise ValueError(f"settings_map.confirmed must be true or false, got {out['confirmed']!r}")
    if not out.get("addresses_path"):
        raise ValueError("settings_map.addresses_path must name the setting that holds the addresses")
    return out
