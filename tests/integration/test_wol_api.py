"""wol_multicast through a real ansible-playbook run against the ESET PROTECT emulator, host network off (nothing
on this machine changes, no lab needed): the API options come from ``module_defaults`` for the ``epns`` action
group, ``api_urls`` names the ``configuration`` service, and a server that refuses the (unconfirmed) setting path
gives action_required with the server's answer instead of a failed run (issue 12)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from emulator import DEFAULT_USERS, Emulator  # noqa: E402

BIN = Path(sys.executable).parent
PASSWORD = DEFAULT_USERS["api-user"]
READ = "/v2/configuration:batchGetValues"
PLAY = """
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/protectnet.epns.epns:
      api_urls: {api_urls}
      ca_path: {ca_path}
      username: api-user
      password: "{{{{ api_password }}}}"
  tasks:
    - name: Wake-on-LAN addresses of the server
      protectnet.epns.wol_multicast:
        destinations: [239.255.0.9]
        host_network: false
      register: wol
    - name: Record the result
      ansible.builtin.copy:
        content: "{{{{ wol | to_json }}}}"
        dest: "{out}"
        mode: "0600"
"""


def env() -> t.Dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("ESET_PROTECT_") and "proxy" not in k.lower()}
    out.update({"ANSIBLE_COLLECTIONS_PATH": str(REPO / ".build" / "collections"),
                "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false", "ANSIBLE_LOCALHOST_WARNING": "false",
                "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false", "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
                "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"})
    return out


def test_module_defaults_of_the_epns_group_reach_wol_multicast(tmp_path: Path) -> None:
    with Emulator("onprem") as emu:
        emu.add_fault(method="POST", path=READ, status=400, times=0, body={"code": 3, "message": "no such setting"})
        out = tmp_path / "wol.json"
        play = tmp_path / "play.yml"
        urls = json.dumps({"business-account": emu.url, "configuration": emu.url})
        play.write_text(PLAY.format(api_urls=urls, ca_path=emu.ca_path, out=out))
        done = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                               "-e", json.dumps({"api_password": PASSWORD}), str(play)],
                              env=env(), capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert PASSWORD not in done.stdout + done.stderr
        result = json.loads(out.read_text())
        assert result["action_required"]["values"] == ["239.255.0.9"]
        assert "HTTP 400" in result["action_required"]["reason"]
        assert "no such setting" in result["action_required"]["reason"]
        assert READ in [r["path"] for r in emu.requests]
