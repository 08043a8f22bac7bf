# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# What a run does, and the probe it runs for that. A good citizen toward ESET's production service: a run is a
# TCP + TLS check (tcp_tls) unless the last full MQTT CONNECT is at least mqtt_every_minutes old (mqtt), or the
# last long hold at least hold_every_minutes old (hold: MQTT CONNECT, then the connection held idle with
# keepalive pings). A host without a record yet does the fullest check first. active false: no probe traffic.
from __future__ import annotations

import typing as t
from dataclasses import replace

from .._probe._engine import Probe
from .._probe._options import ProbeOptions, prepare

MODES = ("tcp_tls", "mqtt", "hold", "passive")
# The hold's own time comes on top of the probe's timeout: the stages before it and the closing ping.
HOLD_MARGIN_SECONDS = 30.0


class Schedule(t.NamedTuple):
    active: bool = True
    mqtt_every_minutes: int = 60
    hold_every_minutes: int = 1440
    hold_seconds: int = 900
    keepalive_seconds: int = 60


def choose_mode(schedule: Schedule, state: t.Mapping[str, t.Any], now: float) -> str:
    if not schedule.active:
        return "passive"
    if schedule.hold_seconds > 0 and _due(state.get("last_hold"), schedule.hold_every_minutes, now):
        return "hold"
    if _due(state.get("last_mqtt"), schedule.mqtt_every_minutes, now):
        return "mqtt"
    return "tcp_tls"


def _due(last: t.Any, every_minutes: int, now: float) -> bool:
    if not isinstance(last, (int, float)) or last > now:  # never, or a clock that went back: due
        return True
    return now - last >= every_minutes * 60


def mark_done(state: t.Dict[str, t.Any], mode: str, now: float) -> None:
    """A hold run included an MQTT CONNECT, so it counts for both."""
    if mode in ("mqtt", "hold"):
        state["last_mqtt"] = round(now, 3)
    if mode == "hold":
        state["last_hold"] = round(now, 3)


def options_for(mode: str, options: ProbeOptions, schedule: Schedule) -> ProbeOptions:
    """The probe's options for a mode: a hold holds hold_seconds with a ping every keepalive_seconds."""
    if mode != "hold":
        return replace(options, hold_seconds=0.0, ping_interval=None)
    hold = float(schedule.hold_seconds)
    return replace(options, hold_seconds=hold, ping_interval=float(min(schedule.keepalive_seconds, hold)),
                   timeout=options.timeout + hold + HOLD_MARGIN_SECONDS)


class _NoMqtt:
    """Stands in for the MQTT session in a tcp_tls run: the path ends once TLS with the server is verified."""

    def connect(self, att: t.Any, tls: t.Any) -> None:
        return None


class TlsOnlyProbe(Probe):
    """The probe engine unchanged, with its stages ending at TLS (the reason: no MQTT CONNECT between the hourly
    ones). A path that completes TLS counts as working; the broker is not asked anything."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.mqtt_session = _NoMqtt()  # type: ignore[assignment]

    def _planned_stages(self, path: t.Any) -> t.Tuple[str, ...]:
        return tuple(s for s in super()._planned_stages(path) if s not in ("mqtt", "hold"))


def run_mode(mode: str, options: ProbeOptions, schedule: Schedule) -> t.Dict[str, t.Any]:
    """The probe result of an active mode (raises ProbeConfigError for options the probe refuses)."""
    settings = options_for(mode, options, schedule)
    probe = TlsOnlyProbe(prepare(settings)) if mode == "tcp_tls" else Probe(prepare(settings))
    result = probe.run()
    result["mode"] = mode
    return result
