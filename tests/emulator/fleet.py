"""A generated fleet: thousands of devices in a static group tree, deterministic from a seed.

    from emulator import fleet
    built = fleet(devices=10000, seed=14)   # {"groups": [...], "devices": [...], "manifest": {...}}

The tree is rooted at the seed's `All` (same uuid) and keeps `All/Lost & found`:
All/<Region>/<Site>/{Linux servers, Linux workstations, Windows workstations, Windows servers, Macs}. Group
uuids come from `group_uuid(path)` like the seed's, so a test can name any group by its path.

Devices carry the v1Device fields an inventory reads (see the ESET Connect device-management spec). The
proportions are realistic, not measured: most devices Windows, a share Linux, some macOS, a few Android and
other systems (those sit in `Lost & found`). Built in, and listed in the manifest so tests can assert on it:

- clones: a re-imaged machine listed twice. Kind `bios`: same BIOS uuid and display name, the old record last
  synced weeks ago. Kind `address` (the last clone when `clones` >= 2): same display name and address, no
  hardware data at all.
- collisions: different machines with the same display name (Windows' default `DESKTOP-XXXXXXX` names).
- odd names that an inventory must sanitise (`ODD_NAMES`).
- addresses: per-site private ranges that repeat (every branch office uses 192.168.1.0/24), a few primary
  addresses on a VPN (100.64.0.0/10) or container (172.17.0.0/16) interface, a few IPv6, a few missing.
- `extra`: explicit devices (a lab's own hosts), added on top of `devices`.

`devices` counts every generated device (clones' old records, collisions and odd names included), so a fleet
of 10000 has exactly 10000 devices plus the extras. lastSyncTime is relative to `now` (default: the current
time); give `now` to get a byte-identical fleet. Component names are guesses kept in seed.py.
"""
from __future__ import annotations

import ipaddress
import random
import uuid
import zlib
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .seed import AGENT_COMPONENT, SECURITY_COMPONENTS, group_uuid, uid

ROOT, LOST = "All", "All/Lost & found"
# (city, site code); a site is a branch office (192.168.1.0/24) when its position is 2 mod 3.
REGIONS: Dict[str, List[Tuple[str, str]]] = {
    "Europe": [("Bratislava", "BTS"), ("Vienna", "VIE"), ("Prague", "PRG"), ("Berlin", "BER"), ("Munich", "MUC"),
               ("Paris", "PAR"), ("Lyon", "LYS"), ("Madrid", "MAD"), ("Milan", "MIL"), ("Warsaw", "WAW"),
               ("Budapest", "BUD"), ("Amsterdam", "AMS"), ("Dublin", "DUB"), ("Copenhagen", "CPH"),
               ("Zurich", "ZRH"), ("Kosice", "KSC")],
    "North America": [("San Diego", "SAN"), ("Toronto", "YYZ"), ("New York", "NYC"), ("Chicago", "CHI"),
                      ("Austin", "AUS"), ("Seattle", "SEA"), ("Montreal", "YUL"), ("Denver", "DEN"),
                      ("Boston", "BOS"), ("Atlanta", "ATL"), ("Vancouver", "YVR"), ("Phoenix", "PHX")],
    "Asia Pacific": [("Singapore", "SIN"), ("Tokyo", "TYO"), ("Sydney", "SYD"), ("Melbourne", "MEL"),
                     ("Osaka", "OSA"), ("Seoul", "SEL"), ("Auckland", "AKL"), ("Hong Kong", "HKG"),
                     ("Taipei", "TPE"), ("Manila", "MNL"), ("Bangalore", "BLR"), ("Perth", "PER")],
}
SITE_GROUPS = ("Linux servers", "Linux workstations", "Windows workstations", "Windows servers", "Macs")
DEVICES_PER_SITE = 250

# role: (share of ordinary devices, site subgroup or None for Lost & found, security component key)
ROLES: Dict[str, Tuple[float, Optional[str], Optional[str]]] = {
    "windows_workstation": (0.58, "Windows workstations", "windows_workstation"),
    "windows_server": (0.10, "Windows servers", "windows_server"),
    "linux_server": (0.13, "Linux servers", "linux_server"),
    "linux_workstation": (0.06, "Linux workstations", "linux_workstation"),
    "mac": (0.09, "Macs", "mac"),
    "android": (0.025, None, "android"),
    "other": (0.015, None, None),
}
# role: [(displayName, familyId, editionId, version name)]; familyId and editionId per the spec's well-known
# values (1 Windows, 2 Linux, 3 Apple, 4 Android, 7 UNIX; edition 1 server, 2 client, 3 mobile, 4 core).
OS_CATALOG: Dict[str, List[Tuple[str, int, int, str]]] = {
    "windows_workstation": [("Microsoft Windows 11 Pro", 1, 2, "10.0.22631"),
                            ("Microsoft Windows 11 Enterprise", 1, 2, "10.0.26100"),
                            ("Microsoft Windows 10 Pro", 1, 2, "10.0.19045"),
                            ("Microsoft Windows 10 Enterprise LTSC 2019", 1, 2, "10.0.17763")],
    "windows_server": [("Microsoft Windows Server 2022 Standard", 1, 1, "10.0.20348"),
                       ("Microsoft Windows Server 2019 Datacenter", 1, 1, "10.0.17763"),
                       ("Microsoft Windows Server 2025 Standard", 1, 1, "10.0.26100"),
                       ("Microsoft Windows Server 2022 Datacenter", 1, 4, "10.0.20348")],
    "linux_server": [("Debian GNU/Linux 12", 2, 1, "12"), ("Ubuntu 24.04 LTS", 2, 1, "24.04"),
                     ("Ubuntu 22.04 LTS", 2, 1, "22.04"), ("Red Hat Enterprise Linux 9.4", 2, 1, "9.4"),
                     ("Rocky Linux 9.5", 2, 1, "9.5"), ("SUSE Linux Enterprise Server 15 SP6", 2, 1, "15.6")],
    "linux_workstation": [("Ubuntu 24.04 LTS", 2, 2, "24.04"), ("Fedora Linux 40", 2, 2, "40"),
                          ("Linux Mint 21.3", 2, 2, "21.3"), ("Debian GNU/Linux 12", 2, 2, "12")],
    "mac": [("macOS 14 Sonoma", 3, 2, "14.6.1"), ("macOS 15 Sequoia", 3, 2, "15.1"),
            ("macOS 13 Ventura", 3, 2, "13.7")],
    "android": [("Android 14", 4, 3, "14"), ("Android 13", 4, 3, "13")],
    "other": [("FreeBSD 14.1", 7, 1, "14.1"), ("", 0, 0, "")],
}
DEVICE_TYPES = {
    "windows_workstation": ("DEVICE_TYPE_NOTEBOOK", "DEVICE_TYPE_DESKTOP"),
    "windows_server": ("DEVICE_TYPE_SERVER", "DEVICE_TYPE_VIRTUAL_MACHINE"),
    "linux_server": ("DEVICE_TYPE_VIRTUAL_MACHINE", "DEVICE_TYPE_SERVER"),
    "linux_workstation": ("DEVICE_TYPE_DESKTOP", "DEVICE_TYPE_NOTEBOOK"),
    "mac": ("DEVICE_TYPE_NOTEBOOK", "DEVICE_TYPE_DESKTOP"),
    "android": ("DEVICE_TYPE_SMARTPHONE", "DEVICE_TYPE_TABLET"),
    "other": ("DEVICE_TYPE_SERVER", "DEVICE_TYPE_UNSPECIFIED"),
}
HARDWARE = {  # device type: [(manufacturer, model, network adapter caption)]
    "DEVICE_TYPE_NOTEBOOK": [("LENOVO", "ThinkPad T14 Gen 4", "Intel(R) Wi-Fi 6E AX211 160MHz"),
                             ("Dell Inc.", "Latitude 5440", "Intel(R) Ethernet Connection (16) I219-LM"),
                             ("HP", "EliteBook 840 G10", "Realtek PCIe GbE Family Controller")],
    "DEVICE_TYPE_DESKTOP": [("Dell Inc.", "OptiPlex 7010", "Intel(R) Ethernet Connection (17) I219-LM"),
                            ("LENOVO", "ThinkCentre M70q Gen 4", "Intel(R) Ethernet Connection I219-V"),
                            ("HP", "ProDesk 400 G9", "Realtek PCIe GbE Family Controller")],
    "DEVICE_TYPE_SERVER": [("Dell Inc.", "PowerEdge R650", "Broadcom NetXtreme Gigabit Ethernet"),
                           ("HPE", "ProLiant DL360 Gen11", "HPE Ethernet 1Gb 4-port 369i Adapter"),
                           ("LENOVO", "ThinkSystem SR630 V2", "Intel(R) Ethernet Controller X710")],
    "DEVICE_TYPE_VIRTUAL_MACHINE": [("VMware, Inc.", "VMware7,1", "vmxnet3 Ethernet Adapter"),
                                    ("Microsoft Corporation", "Virtual Machine", "Microsoft Hyper-V Network Adapter"),
                                    ("QEMU", "Standard PC (Q35 + ICH9, 2009)", "Red Hat VirtIO Ethernet Adapter")],
    "DEVICE_TYPE_SMARTPHONE": [("samsung", "SM-S911B", "wlan0"), ("Google", "Pixel 8", "wlan0")],
    "DEVICE_TYPE_TABLET": [("samsung", "SM-X710", "wlan0")],
    "DEVICE_TYPE_UNSPECIFIED": [("Supermicro", "SYS-1019P-WTR", "em0")],
}
MAC_HARDWARE = [("Apple Inc.", "MacBookPro18,3", "Wi-Fi"), ("Apple Inc.", "Mac14,3", "Ethernet")]
AGENT_VERSIONS = ("12.0.2045.0", "12.1.2023.0", "12.2.2070.0", "12.3.1081.0")
TAGS = ("Finance", "DMZ", "PCI", "Kiosk", "Legacy", "VIP", "Build", "Remote")
# Names an inventory must sanitise; each a distinct machine: (name, role).
ODD_NAMES = [("John's laptop", "mac"), ("büro-pc 2", "windows_workstation"),
             ("Finance PC 03", "windows_workstation"), ("HR/Payroll server", "windows_server"),
             ("Reception desk (front)", "windows_workstation")]
VPN_NET, CONTAINER_NET = ipaddress.ip_network("100.64.0.0/10"), ipaddress.ip_network("172.17.0.0/16")
BRANCH_NET = "192.168.1.0/24"
SPECIAL_ADDRESS_SHARE = {"vpn": 0.01, "container": 0.005, "none": 0.005, "ipv6": 0.005}
EXTRA_FIELDS = {"name", "group", "address", "public_ip", "family_id", "os_name", "uuid", "tags", "device_type"}
FAMILY_ROLE = {0: "other", 1: "windows_server", 2: "linux_server", 3: "mac", 4: "android", 7: "other"}


def fleet(devices: int = 1000, seed: int = 0, clones: int = 3, collisions: int = 3,
          extra: Sequence[Mapping[str, Any]] = (), now: Optional[str] = None) -> Dict[str, Any]:
    """{"groups", "devices", "manifest"}: `devices` generated devices plus `extra`; see the module header."""
    _check_counts(devices, seed, clones, collisions)
    if not isinstance(extra, (list, tuple)):
        raise ValueError(f"extra must be a list of devices, not {extra!r}")
    when = _parse_now(now)
    builder = _Builder(random.Random(f"eset-fleet:{seed}"), seed, when, devices)
    builder.generate(devices, clones, collisions)
    for item in extra:
        builder.add_extra(item)
    return {"groups": builder.groups, "devices": builder.devices, "manifest": builder.manifest()}


def _check_counts(devices: Any, seed: Any, clones: Any, collisions: Any) -> None:
    for name, value in (("devices", devices), ("seed", seed), ("clones", clones), ("collisions", collisions)):
        if type(value) is not int or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0, not {value!r}")
    needed = _special_count(clones, collisions)
    if devices < needed:
        raise ValueError(f"devices must be at least {needed} for clones={clones} and collisions={collisions} "
                         f"(the odd names, both records of every clone and every colliding device), not {devices}")


def _special_count(clones: int, collisions: int) -> int:
    return len(ODD_NAMES) + 2 * clones + sum(_collision_size(i) for i in range(collisions))


def _collision_size(index: int) -> int:
    return 3 if index % 3 == 2 else 2  # mostly pairs, every third a triple


def _parse_now(now: Optional[str]) -> datetime:
    if now is None:
        return datetime.now(timezone.utc).replace(microsecond=0)
    try:
        parsed = datetime.fromisoformat(str(now).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"now must be an RFC 3339 time such as 2025-01-31T12:00:00Z, not {now!r}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"now must carry a time zone (Z or +00:00), not {now!r}")
    return parsed.astimezone(timezone.utc)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def version_id(name: str, family: int) -> str:
    """The spec's version id: Windows Major<<48|Minor<<32|Build, Android the API level, else A<<48|B<<32|C<<16|D."""
    parts = [int(p) for p in name.split(".") if p.isdigit()]
    if not parts:
        return ""
    if family == 4:
        return str(parts[0] + 20)  # Android 14 = API level 34
    if family == 1 and len(parts) == 3:
        return str(parts[0] << 48 | parts[1] << 32 | parts[2])
    value = 0
    for shift, part in zip((48, 32, 16, 0), parts):
        value |= (part & 0xFFFF) << shift
    return str(value)


def component(names: Tuple[str, str], version: str) -> Dict[str, Any]:
    display, name = names
    return {"displayName": display, "name": name, "id": zlib.crc32(name.encode()),
            "version": {"name": version, "id": version_id(version, 0)}}


class _Site:
    def __init__(self, region: str, city: str, code: str, index: int) -> None:
        self.region, self.city, self.code = region, city, code
        self.path = f"{ROOT}/{region}/{city}"
        self.branch = index % 3 == 2
        # Documentation ranges (RFC 5737): they look public and reach nobody.
        self.public_ip = str(ipaddress.ip_address("203.0.113.10") + index)
        if self.branch:
            self.network = ipaddress.ip_network(BRANCH_NET)
        elif index % 3 == 1:
            # 172.20-31: clear of Docker's 172.17.0.0/16, which stands for container interfaces here
            self.network = ipaddress.ip_network(f"172.{20 + index % 12}.{4 * (index // 12)}.0/22")
        else:
            self.network = ipaddress.ip_network(f"10.{index}.0.0/16")
        self.hosts = 0
        self.counters: Dict[str, int] = {}

    def next_address(self) -> str:
        self.hosts += 1  # a branch office past 250 hosts spills into 192.168.2.x: the ranges still repeat
        return str(self.network.network_address + 10 + self.hosts)

    def next_number(self, key: str) -> int:
        self.counters[key] = self.counters.get(key, 0) + 1
        return self.counters[key]


class _Builder:
    def __init__(self, rng: random.Random, seed: int, now: datetime, devices: int) -> None:
        self.rng, self.seed, self.now = rng, seed, now
        self.groups: List[Dict[str, Any]] = []
        self.paths: Dict[str, str] = {}
        self.devices: List[Dict[str, Any]] = []
        self.clones: List[Dict[str, Any]] = []
        self.collisions: List[Dict[str, Any]] = []
        self.odd: List[Dict[str, str]] = []
        self.extra: List[Dict[str, str]] = []
        self.addresses: Dict[str, List[str]] = {kind: [] for kind in SPECIAL_ADDRESS_SHARE}
        self.counter = 0
        self.ensure_group(LOST)
        self.sites = self._sites(max(2, min(devices // DEVICES_PER_SITE, sum(len(c) for c in REGIONS.values()))))

    # -- groups -------------------------------------------------------------------------------------------
    def ensure_group(self, path: str) -> str:
        if path in self.paths:
            return self.paths[path]
        parts = path.split("/")
        if parts[0] != ROOT or any(not p for p in parts):
            raise ValueError(f"group path must start with {ROOT!r} and have no empty parts, not {path!r}")
        parent = self.ensure_group("/".join(parts[:-1])) if len(parts) > 1 else None
        group_id = group_uuid(path)
        if group_id in self.paths.values():  # group_uuid() knows only the name and its parent's name
            other = next(p for p, g in self.paths.items() if g == group_id)
            raise ValueError(f"group path {path!r} gets the same uuid as {other!r}; rename one of them")
        group: Dict[str, Any] = {"uuid": group_id, "displayName": parts[-1], "isSecurityGroup": False}
        if parent:
            group["parentGroupUuid"] = parent
        self.groups.append(group)
        self.paths[path] = group_id
        return group_id

    def _sites(self, count: int) -> List[_Site]:
        rows = [(region, city, code) for region, cities in REGIONS.items() for city, code in cities]
        # Round robin over the regions, so a small fleet still spans several of them.
        order = sorted(range(len(rows)), key=lambda i: (list(REGIONS[rows[i][0]]).index(rows[i][1:]), i))
        sites = [_Site(*rows[i], index=n) for n, i in enumerate(order[:count])]
        for site in sites:
            for name in SITE_GROUPS:
                self.ensure_group(f"{site.path}/{name}")
        return sites

    # -- devices ------------------------------------------------------------------------------------------
    def generate(self, total: int, clones: int, collisions: int) -> None:
        ordinary = total - _special_count(clones, collisions)
        roles = list(ROLES)
        weights = [ROLES[r][0] for r in roles]
        site_weights = [0.4 if s.branch else 1.0 for s in self.sites]
        plain = [self.device(self.rng.choices(roles, weights)[0], self.rng.choices(self.sites, site_weights)[0])
                 for _ in range(ordinary)]
        self._special_addresses(plain)
        made = plain + self._odd_names() + self._collisions(collisions) + self._clones(clones)
        self.rng.shuffle(made)
        self.devices.extend(made)

    def _uuid(self, suffix: str = "") -> str:
        self.counter += 1
        return uid(f"fleet:{self.seed}:{self.counter}{suffix}")

    def device(self, role: str, site: _Site, name: Optional[str] = None) -> Dict[str, Any]:
        rng = self.rng
        os_name, family, edition, version = rng.choice(OS_CATALOG[role])
        kind = rng.choices(DEVICE_TYPES[role], (0.6, 0.4))[0]
        subgroup = ROLES[role][1]
        group_path = f"{site.path}/{subgroup}" if subgroup else LOST
        operating_system: Dict[str, Any] = {"displayName": os_name, "familyId": family, "editionId": edition,
                                            "version": {"name": version, "id": version_id(version, family)}}
        device: Dict[str, Any] = {
            "uuid": self._uuid(), "displayName": name or self._name(role, kind, site),
            "parentGroupUuid": self.paths[group_path], "deviceType": kind, "operatingSystem": operating_system,
            "primaryLocalIpAddress": site.next_address(), "publicIpAddress": site.public_ip,
            "lastSyncTime": rfc3339(self._last_sync()), "deployedComponents": self._components(role),
            "hardwareProfiles": [self._hardware(role, kind)],
            "functionalityStatus": rng.choices(
                ("DEVICE_FUNCTIONALITY_STATUS_OK", "DEVICE_FUNCTIONALITY_STATUS_ATTENTION_RECOMMENDED",
                 "DEVICE_FUNCTIONALITY_STATUS_ATTENTION_REQUIRED"), (0.85, 0.10, 0.05))[0],
            "tags": rng.sample(TAGS, rng.choices((0, 1, 2), (0.7, 0.2, 0.1))[0]),
            "isMuted": rng.random() < 0.02, "isMobile": role == "android"}
        return device

    def _name(self, role: str, kind: str, site: _Site) -> str:
        if role == "linux_server":
            service = self.rng.choice(("web", "db", "app", "mq", "log", "ci"))
            return f"{site.code.lower()}-{service}-{site.next_number(service):02d}"
        prefix = {"windows_workstation": "NB" if kind == "DEVICE_TYPE_NOTEBOOK" else "WS", "windows_server": "SRV",
                  "linux_workstation": "dev", "mac": "MAC", "android": "MOB", "other": "bsd"}[role]
        code = site.code.lower() if prefix.islower() else site.code
        return f"{code}-{prefix}-{site.next_number(prefix):04d}"

    def _last_sync(self) -> datetime:
        roll = self.rng.random()
        if roll < 0.90:  # agents replicate every few minutes
            return self.now - timedelta(seconds=self.rng.randint(5, 45 * 60))
        if roll < 0.95:  # switched off overnight or over a weekend
            return self.now - timedelta(hours=self.rng.uniform(1, 72))
        return self.now - timedelta(days=self.rng.uniform(7, 60))  # stale: gone, broken or forgotten

    def _components(self, role: str) -> List[Dict[str, Any]]:
        rng = self.rng
        if rng.random() < 0.01:
            return []  # listed (imported, or found by a network scan) but no agent yet
        out = [component(AGENT_COMPONENT, rng.choice(AGENT_VERSIONS))]
        security = ROLES[role][2]
        if security and rng.random() < 0.92:
            out.append(component(SECURITY_COMPONENTS[security], rng.choice(("11.1.3050.0", "12.0.2038.0",
                                                                              "12.1.2050.0"))))
        return out

    def _hardware(self, role: str, kind: str) -> Dict[str, Any]:
        rng = self.rng
        manufacturer, model, caption = rng.choice(MAC_HARDWARE if role == "mac" else HARDWARE[kind])
        mac = ":".join(f"{b:02X}" for b in [rng.choice((0x00, 0x3C, 0x8C, 0xA4, 0xF8))] +
                       [rng.getrandbits(8) for _ in range(5)])
        serial = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(10))
        return {"bios": {"uuid": str(uuid.UUID(int=rng.getrandbits(128))).upper(), "serialNumber": serial,
                         "manufacturer": manufacturer},
                "networkAdapters": [{"macAddress": mac, "caption": caption}],
                "manufacturer": manufacturer, "model": model}

    def _special_addresses(self, plain: List[Dict[str, Any]]) -> None:
        """A few devices whose primary address is a VPN or container interface, IPv6, or missing."""
        linux = [d for d in plain if d["operatingSystem"]["familyId"] == 2]
        taken: set = set()
        for kind, share in SPECIAL_ADDRESS_SHARE.items():
            pool = [d for d in (linux if kind == "container" else plain) if d["uuid"] not in taken]
            for device in self.rng.sample(pool, min(len(pool), max(1, round(len(plain) * share)))):
                taken.add(device["uuid"])
                self._readdress(device, kind)
                self.addresses[kind].append(device["uuid"])

    def _readdress(self, device: Dict[str, Any], kind: str) -> None:
        adapters = device["hardwareProfiles"][0]["networkAdapters"]
        if kind == "none":
            del device["primaryLocalIpAddress"]
            return
        if kind == "ipv6":
            device["primaryLocalIpAddress"] = f"fd14:e5e7:{self.rng.getrandbits(16):x}::{self.rng.getrandbits(16):x}"
            return
        network, caption = (VPN_NET, "WireGuard Tunnel") if kind == "vpn" else (CONTAINER_NET, "docker0")
        offset = self.rng.randrange(2, network.num_addresses - 1)
        device["primaryLocalIpAddress"] = str(network.network_address + offset)
        mac = "02:42:AC:11:" + ":".join(f"{self.rng.getrandbits(8):02X}" for _ in range(2))
        adapters.insert(0, {"macAddress": mac, "caption": caption})

    def _odd_names(self) -> List[Dict[str, Any]]:
        out = []
        for name, role in ODD_NAMES:
            device = self.device(role, self.rng.choice(self.sites), name)
            self.odd.append({"display_name": name, "uuid": device["uuid"]})
            out.append(device)
        return out

    def _collisions(self, count: int) -> List[Dict[str, Any]]:
        out = []
        for index in range(count):
            name = "DESKTOP-" + "".join(self.rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(7))
            sites = self.rng.sample(self.sites, min(len(self.sites), _collision_size(index)))
            members = [self.device("windows_workstation", sites[i % len(sites)], name)
                       for i in range(_collision_size(index))]
            self.collisions.append({"display_name": name, "uuids": [d["uuid"] for d in members]})
            out += members
        return out

    def _clones(self, count: int) -> List[Dict[str, Any]]:
        out = []
        for index in range(count):
            by_address = count >= 2 and index == count - 1
            role = "linux_server" if index % 2 == 0 else "windows_workstation"
            new = self.device(role, self.rng.choice(self.sites))
            new["lastSyncTime"] = rfc3339(self.now - timedelta(seconds=self.rng.randint(5, 600)))
            old = {**new, "uuid": self._uuid(":old"), "deployedComponents": self._components(role),
                   "lastSyncTime": rfc3339(self.now - timedelta(days=self.rng.uniform(21, 42)))}
            if by_address:
                del new["hardwareProfiles"], old["hardwareProfiles"]
                machine = f"{new['displayName']}@{new['primaryLocalIpAddress']}"
            else:
                old["primaryLocalIpAddress"] = new["primaryLocalIpAddress"].rsplit(".", 1)[0] + ".250"  # DHCP
                machine = new["hardwareProfiles"][0]["bios"]["uuid"]
            self.clones.append({"kind": "address" if by_address else "bios", "machine": machine,
                                "display_name": new["displayName"], "newest": new["uuid"],
                                "uuids": [old["uuid"], new["uuid"]]})
            out += [old, new]
        return out

    # -- extra devices ------------------------------------------------------------------------------------
    def add_extra(self, item: Mapping[str, Any]) -> None:
        if not isinstance(item, Mapping):
            raise ValueError(f"extra: each device is an object with {sorted(EXTRA_FIELDS)}, not {item!r}")
        unknown = set(item) - EXTRA_FIELDS
        if unknown:
            raise ValueError(f"extra: unknown fields {sorted(unknown)}; known: {sorted(EXTRA_FIELDS)}")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"extra: name must be a non-empty string, not {name!r}")
        family = item.get("family_id", 2)
        if family not in FAMILY_ROLE:
            raise ValueError(f"extra {name}: family_id must be one of {sorted(FAMILY_ROLE)}, not {family!r}")
        device = self.device(FAMILY_ROLE[family], self.sites[0], name)
        device["uuid"] = item.get("uuid") or uid("device:" + name)
        if any(d["uuid"] == device["uuid"] for d in self.devices):
            raise ValueError(f"extra {name}: uuid {device['uuid']} is already in the fleet")
        group_path = item.get("group", LOST)
        device["parentGroupUuid"] = self.ensure_group(group_path)
        self._extra_fields(device, item, name, family)
        self.devices.append(device)
        self.extra.append({"display_name": name, "uuid": device["uuid"], "group_path": group_path})

    def _extra_fields(self, device: Dict[str, Any], item: Mapping[str, Any], name: str, family: int) -> None:
        for key, field in (("address", "primaryLocalIpAddress"), ("public_ip", "publicIpAddress")):
            if key not in item:
                continue
            if item[key] is None:  # given as null: the device has no such address
                device.pop(field, None)
                continue
            try:
                device[field] = str(ipaddress.ip_address(item[key]))
            except ValueError:
                raise ValueError(f"extra {name}: {key} must be an IP address, not {item[key]!r}") from None
        if item.get("os_name"):
            device["operatingSystem"]["displayName"] = str(item["os_name"])
        device["operatingSystem"]["familyId"] = family
        if "tags" in item:
            device["tags"] = [str(tag) for tag in item["tags"]]
        if "device_type" in item:
            device["deviceType"] = str(item["device_type"])
        device["lastSyncTime"] = rfc3339(self.now - timedelta(seconds=30))
        device["functionalityStatus"], device["isMuted"] = "DEVICE_FUNCTIONALITY_STATUS_OK", False

    # -- manifest -----------------------------------------------------------------------------------------
    def manifest(self) -> Dict[str, Any]:
        families: Dict[str, int] = {}
        for device in self.devices:
            key = str(device["operatingSystem"].get("familyId", 0))
            families[key] = families.get(key, 0) + 1
        return {"seed": self.seed, "now": rfc3339(self.now), "devices": len(self.devices),
                "groups": len(self.groups), "group_paths": dict(self.paths),
                "sites": [{"path": s.path, "public_ip": s.public_ip, "network": str(s.network)} for s in self.sites],
                "clones": self.clones, "collisions": self.collisions, "odd_names": self.odd, "extra": self.extra,
                "addresses": self.addresses, "os_families": dict(sorted(families.items()))}
