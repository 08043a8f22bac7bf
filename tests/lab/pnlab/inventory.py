"""The Ansible inventory, ansible.cfg and known_hosts that let a controller reach the lab."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .pki import Pki
from .topology import (
    ESET_SERVER_NAME,
    ESET_SERVER_PORT,
    GARBAGE_PROXY_PORT,
    LAB_V4_NET,
    LAB_V6_NET,
    MANAGED_PROXY_PORT,
    SLOW_PROXY_PORT,
    Host,
)

PROXY_URL = "http://proxy.lab:3128"
PROXY_443ONLY_URL = "http://proxy.lab:3129"
SLOW_PROXY_URL = f"http://hostile.lab:{SLOW_PROXY_PORT}"
GARBAGE_PROXY_URL = f"http://hostile.lab:{GARBAGE_PROXY_PORT}"
MANAGED_SQUID_URL = f"http://squid.lab:{MANAGED_PROXY_PORT}"
MANAGED_APACHE_URL = f"http://apache.lab:{MANAGED_PROXY_PORT}"


def known_hosts(entries: Sequence[tuple[Host, str]]) -> str:
    lines = []
    for host, pubkey in entries:
        keytype, blob = pubkey.split()[:2]
        names = ",".join([*host.v4, *host.v6, host.name])
        lines.append(f"{names} {keytype} {blob}")
    return "\n".join(lines) + "\n"


def lab_vars(pki: Pki, ssh_dir: Path) -> dict[str, str]:
    return {
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(pki.ssh_key),
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_ssh_common_args": (f"'-o UserKnownHostsFile={ssh_dir / 'known_hosts'}"
                                    " -o GlobalKnownHostsFile=/dev/null -o ControlPersist=60s'"),
        # Control sockets in the state dir: `down` then finds and ends the lab's ssh masters by that path.
        "ansible_control_path_dir": str(ssh_dir / "cp"),
        # paramiko cannot be pointed at our known_hosts; the lab's keys are fresh every build anyway.
        "ansible_host_key_checking": "false",
        "lab_ca_path": str(pki.ca),
        "lab_intercept_ca_path": str(pki.intercept_ca),
        "lab_corp_ca_path": str(pki.interceptor_ca("corp")),
        "lab_forti_ca_path": str(pki.interceptor_ca("forti")),
        "lab_client_cert_path": str(pki.cert("client")),
        "lab_client_key_path": str(pki.key("client")),
        "lab_proxy_url": PROXY_URL,
        "lab_proxy_443only_url": PROXY_443ONLY_URL,
        "lab_slow_proxy_url": SLOW_PROXY_URL,
        "lab_garbage_proxy_url": GARBAGE_PROXY_URL,
        "lab_squid_url": MANAGED_SQUID_URL,
        "lab_apache_url": MANAGED_APACHE_URL,
        "lab_networks": f"{LAB_V4_NET},{LAB_V6_NET}",
        "lab_eset_server": ESET_SERVER_NAME,
        "lab_eset_server_port": str(ESET_SERVER_PORT),
        "lab_eset_server_ca_path": str(pki.eset_server_ca),
    }


def inventory(agents: Sequence[Host], servers: Sequence[Host], variables: dict[str, str],
              proxies: Sequence[Host] = (), wol_agents: Sequence[Host] = ()) -> str:
    lines = ["[agents]", *(f"{h.name} ansible_host={h.v4[0]}" for h in agents), "",
             "[servers]", *(f"{h.name} ansible_host={h.v4[0]}" for h in servers), "",
             "[proxies]", *(f"{h.name} ansible_host={h.v4[0]}" for h in proxies), ""]
    if wol_agents:  # Lab(wol=True): agents on lan2, behind pn-router2
        lines += ["[wol_agents]", *(f"{h.name} ansible_host={h.v4[0]}" for h in wol_agents), ""]
    lines += ["[lab:children]", "agents", "servers", "proxies", *(["wol_agents"] if wol_agents else []), "",
             "[lab:vars]", *(f"{k}={v}" for k, v in variables.items())]
    return "\n".join(lines) + "\n"


def ansible_cfg(inventory_path: Path) -> str:
    return "\n".join(["[defaults]", f"inventory = {inventory_path}", "host_key_checking = False",
                      "interpreter_python = /usr/bin/python3", "forks = 20", "",
                      # One SSH exchange per task instead of five: the lab's hosts run no requiretty sudo.
                      "[connection]", "pipelining = True", "",
                      "[paramiko_connection]", "record_host_keys = False", ""])
