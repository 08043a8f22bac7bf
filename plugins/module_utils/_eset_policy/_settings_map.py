# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""Where the ESET Management Agent policy keeps its HTTP proxy settings: the ONE place that says so.

NOT CONFIRMED against a real ESET PROTECT server. ESET does not publish the node names of agent policy data nor the
REST ``product`` id of agent policies; the values below are educated guesses modelled on the console labels
(Advanced Settings > HTTP Proxy > Proxy Configuration Type / Different Proxy Per Service). Learn the real ones with
``protectnet.epns.eset_policy_info`` on a built-in "ESET Management Agent" policy, or one you configured once in the
console, and override with the module options ``settings_map`` or ``settings_map_file`` (same shape as
``DEFAULT_MAP``; keys you leave out keep these defaults). docs/agent-proxy-policy.md explains how.

Shape::

    product: REST configuration.product of agent policies
    section: the key under policy.data (format 1) / the product of the member (format 2) holding the settings
    proxy_mode: {path, ce_type, values: {global: V, per_service: V}}
    fallback_direct: {path, ce_type}        # "use a direct connection if the HTTP proxy is not available"
    services:                               # "all" sets the `global` entry; other names are per-service entries
      global: {use: {path, ce_type}, host: {path, ce_type}, port: {path, ce_type}}
      replication: {...}                    # Replication (to ESET Management Server)
      eset_services: {...}                  # ESET services (updates, packages, telemetry, ...)
    flags: {apply: BIT, force: BIT}         # the ce_flags bits of a leaf: "Apply" and "Force" (neither: "Not apply")

A path is relative to the section, nodes separated by ``/``.

A settings map file is either this map (or part of it) or the overrides file the calibration playbook writes
(``{agent_policy: <this map>, wake_on_lan: <the wol_multicast map>, epns, calibrated_at, server}``);
:func:`load_settings_file` reads both, so every module and the inventory plugin take the same file.
"""
from __future__ import annotations

import copy
import json
import typing as t

CONFIRMED = False

# ce_type numbers seen in ESET's samples: 9 and 6 on booleans, 2 on an enumeration, 0 on "active". Their meaning is
# undocumented; strings and ports are guesses too.
_BOOL, _ENUM, _STR, _INT = 6, 2, 1, 3
# ce_flags of a leaf, a GUESS: 4 is on every set leaf in ESET's samples, so it is taken for "Apply"; the "Force" bit
# has never been seen (1 is a guess). A leaf with neither bit is "Not apply" and skipped when policies are merged.
_APPLY_FLAG, _FORCE_FLAG = 4, 1


def _service_nodes(prefix: str) -> t.Dict[str, t.Dict[str, t.Any]]:
    return {
        "use": {"path": f"settings/HttpProxy/{prefix}/UseProxy", "ce_type": _BOOL},
        "host": {"path": f"settings/HttpProxy/{prefix}/Host", "ce_type": _STR},
        "port": {"path": f"settings/HttpProxy/{prefix}/Port", "ce_type": _INT},
    }


DEFAULT_MAP: t.Dict[str, t.Any] = {
    "confirmed": CONFIRMED,
    "product": "eset.local.products.agent",
    "section": "agent",
    "proxy_mode": {"path": "settings/HttpProxy/ProxyConfigurationType", "ce_type": _ENUM,
                   "values": {"global": 0, "per_service": 1}},
    "fallback_direct": {"path": "settings/HttpProxy/UseDirectConnectionIfProxyUnavailable", "ce_type": _BOOL},
    "services": {
        "global": _service_nodes("Global"),
        "replication": _service_nodes("Replication"),
        "eset_services": _service_nodes("EsetServices"),
    },
    "flags": {"apply": _APPLY_FLAG, "force": _FORCE_FLAG},
}

ALL_SERVICES = "all"
GLOBAL = "global"


class MapError(ValueError):
    """The settings map is not usable; the message names the key."""


def _node(where: str, value: t.Any, enum: bool = False) -> t.Dict[str, t.Any]:
    if not isinstance(value, dict):
        raise MapError(f"{where} must be a dict with path and ce_type")
    path = value.get("path")
    if not isinstance(path, str) or not [p for p in path.split("/") if p]:
        raise MapError(f"{where}.path must be a non-empty node path such as 'settings/HttpProxy/Host'")
    if any(p.startswith("ce_") for p in path.split("/")):
        raise MapError(f"{where}.path {path!r} names a ce_ attribute, not a node")
    ce_type = value.get("ce_type")
    if ce_type is not None and (isinstance(ce_type, bool) or not isinstance(ce_type, int)):
        raise MapError(f"{where}.ce_type must be an integer")
    if enum:
        values = value.get("values")
        if not isinstance(values, dict) or set(values) != {"global", "per_service"}:
            raise MapError(f"{where}.values must map exactly global and per_service to the stored values")
    unknown = set(value) - {"path", "ce_type", "values"}
    if unknown:
        raise MapError("{}: unknown keys {}".format(where, ", ".join(sorted(unknown))))
    return value


def _merge(base: t.Dict[str, t.Any], override: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict) and key not in ("values",):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def build_map(override: t.Optional[t.Mapping[str, t.Any]] = None) -> t.Dict[str, t.Any]:
    """``DEFAULT_MAP`` with ``override`` merged in (dicts key by key), validated."""
    merged = _merge(copy.deepcopy(DEFAULT_MAP), override or {})
    unknown = set(merged) - set(DEFAULT_MAP)
    if unknown:
        raise MapError("settings map: unknown keys {} (accepted: {})".format(
            ", ".join(sorted(unknown)), ", ".join(sorted(DEFAULT_MAP))))
    if not isinstance(merged["confirmed"], bool):
        raise MapError(f"settings map: confirmed must be true or false, got {merged['confirmed']!r}")
    for key in ("product", "section"):
        if not isinstance(merged[key], str) or not merged[key]:
            raise MapError(f"settings map: {key} must be a non-empty string")
    _node("proxy_mode", merged["proxy_mode"], enum=True)
    _node("fallback_direct", merged["fallback_direct"])
    services = merged["services"]
    if not isinstance(services, dict) or GLOBAL not in services:
        raise MapError("settings map: services must be a dict with at least 'global'")
    for name, entry in services.items():
        if name == ALL_SERVICES:
            raise MapError("settings map: 'all' is reserved; the global entry is 'global'")
        if not isinstance(entry, dict) or set(entry) != {"use", "host", "port"}:
            raise MapError(f"settings map: services.{name} must have exactly use, host and port")
        for part in ("use", "host", "port"):
            _node(f"services.{name}.{part}", entry[part])
    _flags(merged["flags"])
    paths: t.Dict[str, str] = {}
    for label, node in iter_nodes(merged):
        if node["path"] in paths:
            raise MapError(
                "settings map: {} and {} use the same path {!r}".format(paths[node["path"]], label, node["path"]))
        paths[node["path"]] = label
    return merged


def _flags(flags: t.Any) -> None:
    """Two distinct single bits: a leaf's ce_flags is tested against each."""
    if not isinstance(flags, dict) or set(flags) != {"apply", "force"}:
        raise MapError(f"settings map: flags must be a dict with exactly apply and force (ce_flags bits): {flags!r}")
    for name in ("apply", "force"):
        bit = flags[name]
        if isinstance(bit, bool) or not isinstance(bit, int) or bit <= 0 or bit & (bit - 1):
            raise MapError(f"settings map: flags.{name} must be one ce_flags bit (1, 2, 4, 8, ...), got {bit!r}")
    if flags["apply"] == flags["force"]:
        raise MapError(f"settings map: flags.apply and flags.force must be different bits, both are {flags['apply']}")


def iter_nodes(mapping: t.Mapping[str, t.Any]) -> t.Iterator[t.Tuple[str, t.Dict[str, t.Any]]]:
    yield "proxy_mode", mapping["proxy_mode"]
    yield "fallback_direct", mapping["fallback_direct"]
    for name, entry in mapping["services"].items():
        for part in ("use", "host", "port"):
            yield f"services.{name}.{part}", entry[part]


def load_map_file(path: str) -> t.Dict[str, t.Any]:
    """A JSON or YAML file with a (partial) map; YAML needs PyYAML, which every Ansible controller has."""
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MapError(f"settings_map_file {path}: {exc}") from None
    try:
        data = json.loads(text)
    except ValueError:
        try:
            import yaml  # type: ignore[import-untyped,unused-ignore]
        except ImportError:
            raise MapError(f"settings_map_file {path} is not JSON (and PyYAML is missing for YAML)") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise MapError(f"settings_map_file {path} is neither JSON nor YAML: {exc}") from None
    if not isinstance(data, dict):
        raise MapError(f"settings_map_file {path} must hold a mapping")
    return data


# The calibration overrides file (playbook protectnet.epns.calibrate): one section per settings map.
OVERRIDES_SECTIONS = ("agent_policy", "wake_on_lan")
# Keys that only an overrides file has: no settings map uses them, so their presence tells the two shapes apart.
OVERRIDES_MARKS = frozenset(OVERRIDES_SECTIONS) | {"epns", "calibrated_at", "server"}


def load_settings_file(path: str, section: str) -> t.Dict[str, t.Any]:
    """The settings map for ``section`` from a bare map file or from the calibration overrides file.

    A bare map is returned as it is; an overrides file gives its ``section`` (``{}`` when it has none, so the
    built-in map applies).
    """
    if section not in OVERRIDES_SECTIONS:
        raise MapError("settings_map_file: unknown section {!r} (known: {})".format(
            section, ", ".join(OVERRIDES_SECTIONS)))
    data = load_map_file(path)
    if not OVERRIDES_MARKS & set(data):
        return data
    found = data.get(section)
    if found is None:
        return {}
    if not isinstance(found, dict):
        raise MapError(f"settings_map_file {path}: {section} must be a mapping (the settings map), "
                       f"got {type(found).__name__}")
    return dict(found)
