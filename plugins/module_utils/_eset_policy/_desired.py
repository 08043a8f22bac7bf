# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""What the managed agent policy must contain: the module's wish (:class:`Desired`) and the policy data it makes,
a template (or an empty format 1 policy) with only the mapped proxy values changed."""
from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from . import _codec as codec
from ._settings_map import ALL_SERVICES, GLOBAL


class AgentProxyError(Exception):
    """Bad input or an unusable template; the message says what to change."""


@dataclass
class Desired:
    name: str
    description: str
    state: str
    proxy_host: t.Optional[str] = None
    proxy_port: int = 3128
    services: t.List[str] = field(default_factory=lambda: [ALL_SERVICES])
    fallback_direct: bool = True
    targets: t.Optional[t.List[str]] = None
    rank: t.Optional[int] = None
    template_policy: t.Optional[str] = None
    reveal_secrets: bool = False


def mapped_values(desired: Desired, mapping: t.Mapping[str, t.Any]) -> t.List[t.Tuple[str, t.Dict[str, t.Any], t.Any]]:
    """``(label, node, value)`` for every node the desired state sets."""
    services = mapping["services"]
    out: t.List[t.Tuple[str, t.Dict[str, t.Any], t.Any]] = []
    use_all = ALL_SERVICES in desired.services
    mode = GLOBAL if use_all else "per_service"
    out.append(("proxy_mode", mapping["proxy_mode"], mapping["proxy_mode"]["values"][mode]))
    if use_all:
        entry = services[GLOBAL]
        out += [("services.global.use", entry["use"], True), ("services.global.host", entry["host"],
                desired.proxy_host), ("services.global.port", entry["port"], desired.proxy_port)]
    else:
        for name, entry in services.items():
            if name == GLOBAL:
                continue
            used = name in desired.services
            out.append((f"services.{name}.use", entry["use"], used))
            if used:
                out += [(f"services.{name}.host", entry["host"], desired.proxy_host),
                        (f"services.{name}.port", entry["port"], desired.proxy_port)]
    out.append(("fallback_direct", mapping["fallback_direct"], desired.fallback_direct))
    return out


def build_policy_data(desired: Desired, mapping: t.Mapping[str, t.Any],
                      template: t.Optional[codec.PolicyData]) -> t.Tuple[codec.PolicyData, t.List[str]]:
    """The desired data: the template (or an empty format 1 policy) with only the mapped values changed."""
    data = template if template is not None else codec.new_format1(mapping["section"])
    sections = data.sections()
    section = sections.get(mapping["section"])
    if section is None:
        if template is not None and data.has_archive:
            raise AgentProxyError("the template policy has no settings section {!r} (it has: {}); set "
                                  "settings_map.section to the right one (eset_policy_info shows them)".format(
                                      mapping["section"], ", ".join(sections) or "none"))
        section = data.add_section(mapping["section"])
    created: t.List[str] = []
    for _label, node, value in mapped_values(desired, mapping):
        created += ["{}/{}".format(mapping["section"], p) for p in
                    codec.set_leaf(section, node["path"], value, node.get("ce_type"), data.string_scalars)]
    return data, created
