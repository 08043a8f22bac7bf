# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The sentinel choice and the fleet's connection-rate arithmetic (docs/monitoring.md, "How often, and why").
from __future__ import annotations

import math
import typing as t

PORTS_PER_PATH = 2  # 8883 and the 443 fallback: every path is tried on both
MAX_SENTINELS_PER_EGRESS = 2
# Intervals a systemd timer and a cron entry both keep evenly (the runner module accepts only these): the divisors
# of 60, and whole hours that divide a day.
EVEN_INTERVALS = (*(m for m in range(1, 60) if 60 % m == 0), *(h * 60 for h in range(1, 25) if 24 % h == 0))


class PlanError(ValueError):
    """Bad input to the plan, with a message naming the value and what would be accepted."""


class RateSettings(t.NamedTuple):
    max_connections_per_second: float = 1.0
    min_interval_minutes: int = 15
    hold_every_minutes: int = 1440
    mqtt_every_minutes: int = 60


class HostPlan(t.NamedTuple):
    active: bool
    egress: str
    reason: str
    connections_per_run: int


class MonitorPlan(t.NamedTuple):
    hosts: t.Dict[str, HostPlan]
    egresses: t.List[t.Dict[str, t.Any]]
    schedule: t.Dict[str, t.Any]

    def as_dict(self) -> t.Dict[str, t.Any]:
        return {"hosts": {name: plan._asdict() for name, plan in self.hosts.items()},
                "egresses": self.egresses, "schedule": self.schedule}


def proxy_in_effect(facts: t.Mapping[str, t.Any], proxies: t.Optional[t.Sequence[str]]) -> str:
    """``host:port`` of the proxy the host's agent uses ("" when direct or unknown); given proxies win."""
    if proxies is not None:
        return ",".join(str(proxy) for proxy in proxies)
    agent_proxy = facts.get("eset_agent_proxy")
    if not isinstance(agent_proxy, t.Mapping) or not agent_proxy.get("host"):
        return ""
    return f"{agent_proxy['host']}:{agent_proxy.get('port') or 3128}"


def egress_key(name: str, facts: t.Mapping[str, t.Any], proxies: t.Optional[t.Sequence[str]] = None) -> str:
    """The egress a host leaves by. Without a public address nothing says two hosts share a way out, so the host is
    an egress of its own (and its own sentinel): a private address alone never groups two sites."""
    public_ip = facts.get("eset_public_ip")
    proxy = proxy_in_effect(facts, proxies)
    where = str(public_ip) if public_ip else f"unknown public address ({name})"
    return f"{where} via {proxy}" if proxy else f"{where} direct"


def _can_probe(facts: t.Mapping[str, t.Any]) -> bool:
    return not facts.get("epns_host_support_skip") and facts.get("epns_probe_supported", True) is not False


def _connections_per_run(facts: t.Mapping[str, t.Any], proxies: t.Optional[t.Sequence[str]]) -> int:
    proxy = proxy_in_effect(facts, proxies)
    paths = 1 + (len(proxy.split(",")) if proxy else 0)  # direct, and each proxy in effect
    return PORTS_PER_PATH * paths


def required_interval(total_connections: int, settings: RateSettings) -> t.Tuple[int, int]:
    """``(interval_minutes, hold_every_minutes)`` that keep ``total_connections`` per run under the cap.

    A run of the fleet opens ``total_connections`` connections; holds open the same number again once per
    ``hold_every`` minutes. With the budget ``B = 60 * cap`` connections per minute, holds get at most half of it
    (``hold_every >= 2 * total / B``) and the runs the rest: ``interval >= total / (B - total / hold_every)``,
    rounded up to the next interval a timer and cron keep evenly (a longer interval only lowers the rate).
    """
    budget = 60.0 * settings.max_connections_per_second
    if total_connections <= 0:
        return settings.min_interval_minutes, settings.hold_every_minutes
    hold_every = max(settings.hold_every_minutes, math.ceil(2 * total_connections / budget))
    interval = math.ceil(total_connections / (budget - total_connections / hold_every))
    interval = max(settings.min_interval_minutes, interval)
    even = [minutes for minutes in EVEN_INTERVALS if minutes >= interval]
    if not even:
        raise PlanError(f"{total_connections} connections per run need an interval of {interval} minutes to stay "
                        f"under {settings.max_connections_per_second:g} connections per second, longer than a day: "
                        "use fewer active hosts (sentinels, not all_active) or a higher max_connections_per_second")
    return even[0], max(hold_every, even[0])


def _check(settings: RateSettings, per_egress: int) -> None:
    if not 1 <= per_egress <= MAX_SENTINELS_PER_EGRESS:
        raise PlanError(f"sentinels_per_egress is {per_egress!r}: use 1 or {MAX_SENTINELS_PER_EGRESS} (or all_active)")
    cap = settings.max_connections_per_second
    if isinstance(cap, bool) or not isinstance(cap, (int, float)) or not 0 < cap <= 100:
        raise PlanError(f"max_connections_per_second is {cap!r}: use a number above 0 and at most 100")
    for name in ("min_interval_minutes", "hold_every_minutes", "mqtt_every_minutes"):
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise PlanError(f"{name} is {value!r}: use a whole number of minutes, at least 1")


def _choose(members: t.List[str], facts_of: t.Mapping[str, t.Mapping[str, t.Any]], per_egress: int,
            all_active: bool) -> t.Dict[str, str]:
    """host -> why it is active or passive, for the members of one egress (sorted by name: the choice is stable)."""
    reasons = {}
    chosen = 0
    for name in members:
        if not _can_probe(facts_of[name]):
            reasons[name] = "passive: the probe does not run on this host"
        elif all_active:
            reasons[name] = "active: all hosts active (epns_monitor_all_active)"
        elif chosen < per_egress:
            chosen += 1
            reasons[name] = f"active: sentinel {chosen} of its egress"
        else:
            reasons[name] = "passive: its egress has its sentinels"
    return reasons


def _arithmetic(active: int, total: int, interval: int, hold_every: int, settings: RateSettings) -> str:
    rate = total / (60.0 * interval) + total / (60.0 * hold_every)
    return (f"{active} active hosts open {total} connections per run; every {interval} min plus holds every "
            f"{hold_every} min: {total} / ({interval} * 60) + {total} / ({hold_every} * 60) = {rate:.4f} "
            f"connections per second (cap {settings.max_connections_per_second:g})")


def plan_monitor(facts_of: t.Mapping[str, t.Mapping[str, t.Any]], all_active: bool = False, per_egress: int = 2,
                 proxies: t.Optional[t.Sequence[str]] = None,
                 settings: t.Optional[RateSettings] = None) -> MonitorPlan:
    """The monitor plan of the hosts in ``facts_of`` (host -> its inventory facts)."""
    settings = settings or RateSettings()
    _check(settings, per_egress)
    groups: t.Dict[str, t.List[str]] = {}
    for name in sorted(facts_of):
        groups.setdefault(egress_key(name, facts_of[name], proxies), []).append(name)
    hosts: t.Dict[str, HostPlan] = {}
    egresses: t.List[t.Dict[str, t.Any]] = []
    for key, members in groups.items():
        reasons = _choose(members, facts_of, per_egress, all_active)
        for name in members:
            active = reasons[name].startswith("active")
            count = _connections_per_run(facts_of[name], proxies) if active else 0
            hosts[name] = HostPlan(active, key, reasons[name], count)
        egresses.append({"egress": key, "hosts": len(members),
                         "sentinels": [name for name in members if hosts[name].active]})
    egresses.sort(key=lambda group: (-group["hosts"], group["egress"]))
    active_hosts = sum(1 for plan in hosts.values() if plan.active)
    total = sum(plan.connections_per_run for plan in hosts.values())
    interval, hold_every = required_interval(total, settings)
    rate = total / (60.0 * interval) + total / (60.0 * hold_every)
    schedule = {"interval_minutes": interval, "hold_every_minutes": hold_every,
                "mqtt_every_minutes": max(settings.mqtt_every_minutes, interval),
                "active_hosts": active_hosts, "passive_hosts": len(hosts) - active_hosts,
                "connections_per_run": total, "connections_per_second": round(rate, 6),
                "max_connections_per_second": settings.max_connections_per_second,
                "arithmetic": _arithmetic(active_hosts, total, interval, hold_every, settings)}
    return MonitorPlan(hosts, egresses, schedule)
