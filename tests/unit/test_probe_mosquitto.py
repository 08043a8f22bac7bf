"""The probe against a real mosquitto on 127.0.0.1 with a temporary CA (skipped without mosquitto)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import typing as t

import pytest
from ansible_collections.protectnet.epns.plugins.module_utils._probe import _engine as P
from ansible_collections.protectnet.epns.plugins.module_utils._probe._options import ProbeOptions

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed")


@pytest.fixture(scope="module")
def mosquitto(pki: t.Any, lo: t.Any, tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[dict]:
    root = tmp_path_factory.mktemp("mosquitto")
    ports = {"mutual": lo.free_port(), "server_auth": lo.free_port()}
    conf = root / "mosquitto.conf"
    lines = ["per_listener_settings true", "log_dest stderr", "persistence false"]
    if os.geteuid() == 0:
        # mosquitto drops root for its 'mosquitto' user, which cannot read the test keys.
        lines.append("user root")
    for name, port in ports.items():
        lines += [f"listener {port} 127.0.0.1", "allow_anonymous true",
                  f"cafile {pki.ca}", f"certfile {pki.server_cert}", f"keyfile {pki.server_key}",
                  f"require_certificate {'true' if name == 'mutual' else 'false'}"]
    conf.write_text("\n".join(lines) + "\n")
    assert MOSQUITTO is not None
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 5
        for port in ports.values():
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        pytest.skip(f"mosquitto did not start: {proc.stderr.read().decode()[-500:]}"
                                    if proc.stderr else "")
                    time.sleep(0.05)
        yield ports
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


def probe(pki: t.Any, mosquitto: dict, **kwargs: t.Any) -> dict:
    return P.run_probe(ProbeOptions(host="127.0.0.1", server_name="epns.eset.com", ca_path=str(pki.ca),
                                       primary_port=mosquitto["mutual"], fallback_port=mosquitto["server_auth"],
                                       timeout=5, connect_timeout=2, **kwargs))


def test_mosquitto_without_client_cert(pki: t.Any, mosquitto: dict) -> None:
    result = probe(pki, mosquitto)
    primary, fallback = result["paths"]
    assert primary["failure"]["class"] == "tls_client_cert_required", primary["failure"]
    assert primary["ok"] and primary["proven_by_auth"]
    assert fallback["ok"] and not fallback["proven_by_auth"], fallback["failure"]
    assert fallback["attempts"][0]["mqtt"]["return_code"] == 0
    assert result["verdict"] == "reachable"
    assert result["elapsed_ms"] < 500


def test_mosquitto_with_client_cert_and_hold(pki: t.Any, mosquitto: dict) -> None:
    result = probe(pki, mosquitto, client_cert=str(pki.client_cert), client_key=str(pki.client_key),
                   hold_seconds=0.3, ping_interval=0.15)
    for path in result["paths"]:
        assert path["ok"] and not path["proven_by_auth"] and path["failure"] is None, path["failure"]
        assert path["attempts"][0]["stages"][-1]["detail"]["pings"] == 2
