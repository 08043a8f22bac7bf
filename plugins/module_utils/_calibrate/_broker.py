# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""What the real EPNS broker answered the probe (an epns_probe result), per port: informational for the docs.

Per port: the TLS version, the server certificate, whether the broker asked for a client certificate, the CONNACK
return code to an anonymous CONNECT, and whether the port carries MQTT over TLS (a CONNACK came back inside TLS).
"""
from __future__ import annotations

import typing as t

from .._epns import FALLBACK_PORT, PRIMARY_PORT, TLS_CLIENT_CERT_REQUIRED
from ._sentinel import CONFIRMED, NOT_FOUND, item

CERT_KEYS = ("subject", "issuer", "sans", "not_after", "sha256", "verified", "anchor")
NO_MQTT = ("mqtt_no_connack", "mqtt_bad_response")


def _path(probe: t.Mapping[str, t.Any], port: int) -> t.Optional[t.Mapping[str, t.Any]]:
    """The direct path of the port, or else the first one through a proxy."""
    paths = [p for p in probe.get("paths") or [] if p.get("port") == port]
    paths.sort(key=lambda p: p.get("proxy") is not None)
    return paths[0] if paths else None


def _furthest(path: t.Mapping[str, t.Any]) -> t.Mapping[str, t.Any]:
    attempts = list(path.get("attempts") or [])
    attempts.sort(key=lambda a: (a.get("mqtt") is not None, a.get("tls") is not None), reverse=True)
    return attempts[0] if attempts else {}


def _cert_requested(attempt: t.Mapping[str, t.Any], failure: t.Optional[str]) -> t.Optional[bool]:
    if failure == TLS_CLIENT_CERT_REQUIRED:
        return True
    for stage in attempt.get("stages") or []:
        if stage.get("name") == "tls" and stage.get("ok"):
            return bool((stage.get("detail") or {}).get("client_cert_requested"))
    return None


def port_answer(path: t.Optional[t.Mapping[str, t.Any]]) -> t.Dict[str, t.Any]:
    if path is None:
        return {"path": None, "tls_version": None, "certificate": None, "client_certificate_requested": None,
                "connack_code": None, "connack_meaning": None, "mqtt_over_tls": None, "failure": "not probed"}
    attempt = _furthest(path)
    failure = (path.get("failure") or {}).get("class")
    tls = attempt.get("tls") or {}
    mqtt = attempt.get("mqtt") or {}
    carries: t.Optional[bool] = None
    if mqtt.get("return_code") is not None:
        carries = True
    elif failure in NO_MQTT and tls:
        carries = False
    return {"path": path.get("id"), "tls_version": tls.get("version"),
            "certificate": {k: tls.get(k) for k in CERT_KEYS} if tls else None,
            "client_certificate_requested": _cert_requested(attempt, failure),
            "connack_code": mqtt.get("return_code"), "connack_meaning": mqtt.get("meaning"),
            "mqtt_over_tls": carries, "failure": failure}


def _known(name: str, value: t.Any, note: str = "") -> t.Dict[str, t.Any]:
    return item(name, NOT_FOUND if value is None else CONFIRMED, value, note)


def summarize(probe: t.Optional[t.Mapping[str, t.Any]], primary: int = PRIMARY_PORT,
              fallback: int = FALLBACK_PORT) -> t.Dict[str, t.Any]:
    """{epns: the overrides section, items: one per fact and port}."""
    if not probe:
        return {"epns": {"probed": False}, "items": [item("epns", NOT_FOUND, None, "no probe result was given")]}
    ports = {str(port): port_answer(_path(probe, port)) for port in (primary, fallback)}
    first, second = ports[str(primary)], ports[str(fallback)]
    same: t.Optional[bool] = None
    if first["mqtt_over_tls"] is not None and second["mqtt_over_tls"] is not None:
        same = first["mqtt_over_tls"] and second["mqtt_over_tls"] and first["connack_code"] == second["connack_code"]
    epns = {"probed": True, "host": probe.get("host"), "verdict": probe.get("verdict"), "ports": ports,
            f"port_{fallback}_same_mqtt_over_tls": same}
    items = []
    for port, answer in ports.items():
        note = answer["failure"] or ""
        items += [_known(f"epns.{port}.tls_version", answer["tls_version"], note),
                  _known(f"epns.{port}.client_certificate_requested", answer["client_certificate_requested"], note),
                  _known(f"epns.{port}.connack_code", answer["connack_code"], note),
                  _known(f"epns.{port}.mqtt_over_tls", answer["mqtt_over_tls"], note)]
    items.append(_known(f"epns.port_{fallback}_same_mqtt_over_tls", same,
                        "" if same is not None else "one of the ports did not get as far as MQTT"))
    return {"epns": epns, "items": items}
