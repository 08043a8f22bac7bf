# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# What the report knows about each host besides its probe result: the inventory's facts (hosts_info, from the
# role), read once into plain records, checked, and the few derived values the fleet parts share (local prefix,
# proxy in effect, the probe's egress), plus the stale_after duration.
from __future__ import annotations

import datetime
import ipaddress
import re
import typing as t

from ._normalise import ReportInputError, optional_text
from ._text import plain_text

_FRACTION = re.compile(r"\.(\d+)")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# The prefix that stands for "the same local network" when ESET gives only one address per device.
PREFIX_LENGTH = {4: 24, 6: 64}


class HostFacts(t.NamedTuple):
    """One host's inventory facts; None where the inventory has nothing."""

    known_to_eset: bool
    display_name: t.Optional[str]
    group: t.Optional[str]
    public_ip: t.Optional[str]
    local_ip: t.Optional[str]
    os_family: t.Optional[str]
    last_sync: t.Optional[str]
    proxy: t.Optional[str]  # the agent's proxy in effect, host:port; None: direct
    probe_supported: t.Optional[bool]
    skipped: bool  # epns_host_support took it out of the play
    in_play: bool
    agent_connection: t.Optional[t.Dict[str, t.Any]]
    monitor: t.Optional[t.Dict[str, t.Any]] = None  # what epns_monitor last saw there (epns_monitor_info)


NO_FACTS = HostFacts(False, None, None, None, None, None, None, None, None, False, True, None)


def parse_duration(value: t.Any, name: str = "stale_after") -> int:
    """``<n>s|m|h|d`` (or a number of seconds) as seconds."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    found = _DURATION.match(str(value)) if isinstance(value, str) else None
    if not found:
        raise ReportInputError(
            f"{name} must be a duration like 30m, 12h or 1d (a number with s, m, h or d), got {plain_text(value)!r}")
    return int(found.group(1)) * _UNIT_SECONDS[found.group(2)]


def proxy_text(value: t.Any) -> t.Optional[str]:
    """The agent's proxy (the inventory's eset_agent_proxy mapping, or a host:port string) as host:port."""
    if isinstance(value, t.Mapping):
        host = optional_text(value.get("host"))
        if not host:
            return None
        port = value.get("port") or 3128
        return "{}:{}".format(f"[{host}]" if ":" in host else host, port)
    return optional_text(value)


def local_prefix(address: t.Optional[str]) -> t.Optional[str]:
    """The /24 (IPv4) or /64 (IPv6) around an address; None when it is not an address."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.strip().split("%", 1)[0])
    except ValueError:
        return None
    return str(ipaddress.ip_network(f"{ip}/{PREFIX_LENGTH[ip.version]}", strict=False))


def _agent_summary(value: t.Any) -> t.Optional[t.Dict[str, t.Any]]:
    """The agent-connection module's summary (state, port, via, up_seconds) and its message; None if absent."""
    if not isinstance(value, t.Mapping) or value.get("skipped") or not isinstance(value.get("summary"), t.Mapping):
        return None
    summary = value["summary"]
    up = summary.get("up_seconds")
    port = summary.get("port")
    return {
        "state": optional_text(summary.get("state")),
        "port": port if isinstance(port, int) and not isinstance(port, bool) else None,
        "via": optional_text(summary.get("via")),
        "up_seconds": up if isinstance(up, int) and not isinstance(up, bool) else None,
        "message": optional_text(value.get("message")),
    }


def _epoch_text(value: t.Any) -> t.Optional[str]:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        return None
    return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _monitor_summary(value: t.Any) -> t.Optional[t.Dict[str, t.Any]]:
    """epns_monitor_info's facts on a host with the monitor (times as ISO 8601 UTC); None without the monitor."""
    if not isinstance(value, t.Mapping) or value.get("skipped") or not value.get("installed"):
        return None
    return {"last_working": _epoch_text(value.get("last_working")), "last_run": _epoch_text(value.get("last_run")),
            "last_verdict": optional_text(value.get("last_verdict"))}


def evidence(facts: t.Optional[HostFacts], state: str, primary_port: int) -> t.List[str]:
    """Lines that back or qualify a host's verdict without probing: what the ESET agent itself holds (shown when
    it is not the plain direct connection on the primary port, or the host is not reachable) and, with the
    monitor, when EPNS last worked from there."""
    lines: t.List[str] = []
    agent = facts.agent_connection if facts else None
    if agent and agent.get("state"):
        plain = agent["state"] == "connected" and agent.get("via") == "direct" and agent.get("port") == primary_port
        if not plain or state != "reachable":
            lines.append("ESET agent: " + (agent.get("message") or agent["state"].replace("_", " ")))
    monitor = facts.monitor if facts else None
    if monitor:
        lines.append("monitor: last seen working " + (monitor["last_working"] or "never")
                     + (f" (last run {monitor['last_run']}: {monitor['last_verdict'] or 'passive'})"
                        if monitor["last_run"] else ""))
    return lines


def _facts(raw: t.Mapping[str, t.Any]) -> HostFacts:
    supported = raw.get("epns_probe_supported")
    in_play = raw.get("in_play")
    return HostFacts(
        known_to_eset=bool(optional_text(raw.get("eset_uuid"))),
        display_name=optional_text(raw.get("eset_display_name")),
        group=optional_text(raw.get("eset_group_path")),
        public_ip=optional_text(raw.get("eset_public_ip")),
        local_ip=optional_text(raw.get("eset_local_ip")),
        os_family=optional_text(raw.get("eset_os_family")),
        last_sync=optional_text(raw.get("eset_last_sync")),
        proxy=proxy_text(raw.get("eset_agent_proxy")),
        probe_supported=supported if isinstance(supported, bool) else None,
        skipped=raw.get("epns_host_support_skip") is not None,
        in_play=in_play if isinstance(in_play, bool) else True,
        agent_connection=_agent_summary(raw.get("agent_connection")),
        monitor=_monitor_summary(raw.get("monitor")),
    )


def read_hosts_info(hosts_info: t.Any) -> t.Dict[str, HostFacts]:
    """hosts_info (host -> mapping of inventory facts) as HostFacts per host."""
    if hosts_info is None:
        return {}
    if not isinstance(hosts_info, t.Mapping):
        raise ReportInputError(f"hosts_info must be a mapping of host name to facts, not {type(hosts_info).__name__}")
    out = {}
    for host, raw in hosts_info.items():
        if raw is None:
            raw = {}
        if not isinstance(raw, t.Mapping):
            raise ReportInputError(
                f"hosts_info[{plain_text(host)}] must be a mapping of facts, not {type(raw).__name__}")
        out[str(host)] = _facts(raw)
    return out


def probe_egress(raw: t.Any) -> t.Tuple[t.Optional[str], t.Optional[str]]:
    """(source address, gateway) the probe used: IPv4 first, else IPv6; (None, None) in older results."""
    egress = raw.get("egress") if isinstance(raw, t.Mapping) else None
    if not isinstance(egress, t.Mapping):
        return None, None
    for family in ("ipv4", "ipv6"):
        one = egress.get(family)
        if isinstance(one, t.Mapping) and (one.get("source") or one.get("gateway")):
            return optional_text(one.get("source")), optional_text(one.get("gateway"))
    return None, None


def parse_time(value: t.Optional[str]) -> t.Optional[datetime.datetime]:
    """An ISO 8601 time (ESET's lastSyncTime, the report's generated_at) as an aware UTC datetime."""
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    # Python before 3.11 reads 3 or 6 digits of a fraction only; ESET's protobuf JSON may give up to 9.
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return when.replace(tzinfo=datetime.timezone.utc) if when.tzinfo is None else when.astimezone(datetime.timezone.utc)
