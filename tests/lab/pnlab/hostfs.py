"""A managed host's own filesystem view: the holder process, overlay /etc, private /run, names and trust."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Sequence

from .pki import subject_hash
from .proc import LabError, run, spawn
from .topology import (
    EPNS_NAME,
    MANAGED_PROXIES,
    PROXY_SUFFIX,
    SERVER,
    Host,
    managed_proxy_hosts,
    resolver_addrs,
    role_addrs,
    server_host,
    svc_v4,
    svc_v6,
)

SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CA_CONF = Path("/etc/ca-certificates.conf")
SHIPPED_DIR = "/usr/share/ca-certificates"       # Debian's shipped roots; overlaid in each host's mount namespace
LOCAL_DIR = "/usr/local/share/ca-certificates"   # where an admin adds one; a per-host bind mount
SHIPPED_LAB_CA = "PN_Lab_Root_CA"
# The lab's resolver (pnlab.resolver). glibc waits 3 s per server, longer than the `slow` DNS fault's default delay
# (2 s), so that fault is a late answer to glibc rather than none; with `timeout` a lookup gives up after 2 x 3 s.
RESOLV = "".join(f"nameserver {a}\n" for a in resolver_addrs()) + "options timeout:3 attempts:1\n"


def host_dir(state: Path, host: Host) -> Path:
    return state / "hosts" / host.name


def hosts_text(host: Host) -> str:
    """The lab's own names. epns.eset.com comes from the lab's resolver, except on the managed proxies, which
    resolve it through their hosts file as a site's proxy with its own name service would."""
    server = server_host()
    lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback",
             *(f"{a} {host.name}.lab {host.name} {host.short}.lab" for a in (*host.v4, *host.v6))]
    if host.name != SERVER:
        lines += [f"{a} server.lab" for a in (*server.v4, *server.v6)]
    if host.name in MANAGED_PROXIES:
        lines += [f"{a} {EPNS_NAME}" for a in role_addrs("broker")]
    lines += [f"{svc_v4(PROXY_SUFFIX)} proxy.lab", f"{svc_v6(PROXY_SUFFIX)} proxy.lab"]
    lines += [f"{a} {p.short}.lab" for p in managed_proxy_hosts() if p.name != host.name for a in (*p.v4, *p.v6)]
    lines += [f"{a} hostile.lab" for a in role_addrs("hostile")]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    """Write through a rename, as the tools under test would, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.pnlab")
    tmp.write_text(text)
    os.replace(tmp, path)


def _symlink(path: Path, target: str) -> None:
    if path.is_symlink() or path.exists():
        path.unlink()
    path.symlink_to(target)


def write_netns_etc(host: Host) -> None:
    """`ip netns exec` overlays these, so commands run that way resolve like the host itself."""
    base = Path("/etc/netns") / host.name
    _write(base / "hosts", hosts_text(host))
    _write(base / "resolv.conf", RESOLV)


def _trust_files(etc: Path, local_dir: Path, lab_ca: Path, local: Sequence[Path]) -> None:
    """What update-ca-certificates makes of the lab's CAs (measured at 0.6 s a run here, Java keystore hook
    included: too slow for every fault switch, so its effect is written directly). The lab CA stands in for a
    root the distribution ships (a link into /usr/share/ca-certificates, listed in /etc/ca-certificates.conf);
    each CA in `local` is an anchor an admin added (/usr/local/share/ca-certificates/NAME.crt)."""
    certs = etc / "ssl" / "certs"
    ours = {f"{SHIPPED_LAB_CA}.pem"}
    for entry in sorted(certs.iterdir()) if certs.is_dir() else []:
        if entry.name.startswith("pnlab-") or entry.name in ours:
            entry.unlink()
        elif entry.is_symlink() and (os.readlink(entry).startswith("pnlab-") or os.readlink(entry) in ours):
            entry.unlink()
    certs.mkdir(parents=True, exist_ok=True)
    for stale in local_dir.glob("pnlab-*.crt"):
        stale.unlink()
    _write(etc / "ca-certificates.conf", _ca_conf_text())
    _symlink(certs / f"{SHIPPED_LAB_CA}.pem", f"{SHIPPED_DIR}/mozilla/{SHIPPED_LAB_CA}.crt")
    _symlink(certs / f"{subject_hash(lab_ca)}.0", f"{SHIPPED_LAB_CA}.pem")
    for ca in local:
        _write(local_dir / f"pnlab-{ca.stem}.crt", ca.read_text())
        _symlink(certs / f"pnlab-{ca.stem}.pem", f"{LOCAL_DIR}/pnlab-{ca.stem}.crt")
        _symlink(certs / f"{subject_hash(ca)}.0", f"pnlab-{ca.stem}.pem")
    bundle = SYSTEM_BUNDLE.read_text() + lab_ca.read_text() + "".join(ca.read_text() for ca in local)
    _write(certs / "ca-certificates.crt", bundle)


def _ca_conf_text() -> str:
    line = f"mozilla/{SHIPPED_LAB_CA}.crt"
    text = CA_CONF.read_text() if CA_CONF.exists() else ""
    lines = [x for x in text.splitlines() if x.strip() != line]
    return "\n".join([*lines, line]) + "\n"


def _shipped_view(hdir: Path, lab_ca: Path) -> None:
    """The upper layer of the host's /usr/share/ca-certificates: the lab CA as one of the shipped roots."""
    upper = hdir / "ca-share-upper"
    for sub in ("ca-share-upper/mozilla", "ca-share-work", "local-ca"):
        (hdir / sub).mkdir(parents=True, exist_ok=True)
    _write(upper / "mozilla" / f"{SHIPPED_LAB_CA}.crt", lab_ca.read_text())


def prepare_upper(state: Path, host: Host, cas: Sequence[Path]) -> None:
    hdir = host_dir(state, host)
    upper = hdir / "etc-upper"
    for sub in ("etc-upper", "etc-work", "run/sshd", "run/lock", "run/pnlab"):
        (hdir / sub).mkdir(parents=True, exist_ok=True)
    (hdir / "run/sshd").chmod(0o755)
    _write(upper / "hosts", hosts_text(host))
    _write(upper / "resolv.conf", RESOLV)
    _write(upper / "hostname", host.name + "\n")
    _shipped_view(hdir, cas[0])
    _trust_files(upper, hdir / "local-ca", cas[0], cas[1:])
    write_netns_etc(host)


def start_holder(state: Path, host: Host) -> int:
    """A sleeper that owns the host's mount and UTS namespaces; everything for the host enters through it."""
    hdir = host_dir(state, host)
    pid = spawn(["ip", "netns", "exec", host.name, "unshare", "--mount", "--uts", "--propagation", "private",
                 "sleep", "infinity"], hdir / "holder.log")
    deadline = time.monotonic() + 5
    while _comm(pid) != "sleep":
        if time.monotonic() > deadline:
            raise LabError(f"holder for {host.name} did not start")
        time.sleep(0.01)
    (hdir / "holder.pid").write_text(f"{pid}\n")
    return pid


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def mount_views(state: Path, host: Host, holder: int) -> None:
    hdir = host_dir(state, host)
    enter = ["nsenter", "-t", str(holder), "-m", "-u", "--"]
    run([*enter, "hostname", host.name])
    run([*enter, "mount", "-t", "overlay", "overlay", "-o",
         f"lowerdir=/etc,upperdir={hdir / 'etc-upper'},workdir={hdir / 'etc-work'}", "/etc"])
    # The state dir stays visible inside the private /run, so tests find the lab CA at the same path.
    run([*enter, "mount", "--bind", str(state), str(hdir / "run" / "pnlab")])
    run([*enter, "mount", "--rbind", str(hdir / "run"), "/run"])
    # Trust as a Debian host has it, in this host's namespace only: the machine's own /usr stays untouched.
    run([*enter, "mount", "-t", "overlay", "overlay", "-o",
         f"lowerdir={SHIPPED_DIR},upperdir={hdir / 'ca-share-upper'},workdir={hdir / 'ca-share-work'}", SHIPPED_DIR])
    run([*enter, "mount", "--bind", str(hdir / "local-ca"), LOCAL_DIR])


def merged_etc(holder: int) -> Path:
    """The host's /etc as the host sees it, reached from outside through the holder's root."""
    return Path(f"/proc/{holder}/root/etc")


def set_trust(holder: int, lab_ca: Path, local: Sequence[Path]) -> None:
    """The lab CA as a shipped root plus `local` as anchors an admin added, in the host's own view."""
    _trust_files(merged_etc(holder), Path(f"/proc/{holder}/root{LOCAL_DIR}"), lab_ca, local)
