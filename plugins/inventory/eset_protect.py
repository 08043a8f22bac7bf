# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: eset_protect
short_description: ESET PROTECT (On-Prem or Cloud) as the inventory
version_added: 0.1.0
author:
  - protectnet.epns contributors (@protectnet)
description:
  - Lists the managed devices of ESET PROTECT (C(GET /v1/devices)) and its static groups (C(GET /v1/device_groups))
    and makes them hosts and groups, the way cloud inventory plugins make a cloud's machines an inventory.
  - Paging asks for the deployment's largest page (On-Prem 10000, Cloud 1000 devices), so the number of requests is
    the minimum. The connection options, environment variables and TLS rules are those of the API modules.
  - A host is named by the device's display name in the characters C([A-Za-z0-9._-]) (others become C(_)); when
    several devices would get one name, each of them gets C(_) and the first 8 characters of its uuid.
  - Host variables are C(ansible_host), C(eset_uuid), C(eset_display_name), C(eset_group_path), C(eset_group_uuid),
    C(eset_last_sync) (the agent's last replication to the server, not its EPNS state), C(eset_public_ip),
    C(eset_local_ip), C(eset_os_family), C(eset_os_name), C(eset_agent_version), C(eset_functionality_status),
    C(eset_tags), C(eset_device_type) and C(epns_probe_supported) (true only for the Linux family).
  - The static groups become C(eset_All), C(eset_All_Linux), C(eset_All_Linux_Servers) (path parts in
    C([A-Za-z0-9_]), joined by C(_), each a child of its parent); every host is also in C(eset_os_<family>).
    The group C(all) gets C(eset_inventory), a summary of what was listed, left out, renamed and found cloned.
  - Devices left out (no usable address, clones), renamed devices and group paths that do not exist are warned
    about; the inventory still lists the rest.
extends_documentation_fragment:
  - constructed
  - inventory_cache
  - protectnet.epns.eset_api.plugin
options:
  plugin:
    description: The name of this plugin, so that Ansible knows the file is for it.
    type: str
    required: true
    choices: [protectnet.epns.eset_protect, eset_protect]
  page_size:
    description:
      - Devices and groups per page. Default, the deployment's largest page (On-Prem 10000, Cloud 1000), which makes
        the number of requests the minimum.
    type: int
  ansible_host_sources:
    description:
      - Where C(ansible_host) comes from, in order of preference; the first usable value wins. An entry is a device
        field path as the API names it (dotted, list items by number, for example C(publicIpAddress) or
        C(hardwareProfiles.0.networkAdapters.0.caption)) or C({expression = <Jinja2 expression>}) over the host's
        variables (written as a YAML mapping with the key C(expression)).
      - A value is usable when it is an IP address outside O(ansible_host_exclude) or a valid host name. A display
        name such as C(John's laptop) is neither. A device with no usable value is left out, with the reason.
    type: list
    elements: raw
    default: [primaryLocalIpAddress, displayName]
  ansible_host_exclude:
    description:
      - Networks in CIDR notation whose addresses are never used as C(ansible_host), for example a VPN or a
        container network that a device reports as its primary address.
    type: list
    elements: str
    default: []
  group_paths:
    description:
      - Static group name paths (C(All/Linux), or C(Linux) without the root group); only devices in them or below
        are listed. A path that names no group is warned about with the known paths; the other paths are still
        listed, and when no path names a group no device is listed.
    type: list
    elements: str
    default: []
  os_families:
    description: Only devices of these operating system families (from C(operatingSystem.familyId)). Empty, all.
    type: list
    elements: str
    choices: [windows, linux, macos, android, windows_mobile, symbian, unix, unknown]
    default: []
  clones:
    description:
      - Devices that are one machine (the same BIOS uuid, BIOS serial number and manufacturer, or MAC address; or
        the same display name at the same C(primaryLocalIpAddress) after re-imaging).
      - V(newest) lists the most recently synced one and reports the others; V(all) lists every one, and reports
        them too.
    type: str
    choices: [newest, all]
    default: newest
  group_prefix:
    description: The prefix of every group this plugin makes (letters, digits and C(_)).
    type: str
    default: eset_
  agent_proxy:
    description:
      - Add the host variable C(eset_agent_proxy), the HTTP proxy the device's ESET Management Agent policies give it
        (C(host), C(port), C(services), C(fallback_direct), C(from_policies), C(map_confirmed), C(reason)), merged
        in ESET's order (static groups from C(All) down, dynamic groups after each level's static group, the device
        last; forced settings and settings marked not to apply as the flags say).
      - When no policy sets a proxy, C(host) is null and C(reason) is C(unknown (maybe set by the installer)). A
        proxy given at install time is in no policy.
      - Costs the policy list, the agent policies' assignments and the members of each targeted group that is on
        no device's static path (docs/inventory.md has the formula).
    type: bool
    default: true
  settings_map:
    description:
      - Where agent policies keep the proxy settings, and which C(ce_flags) bits mean apply and force; the shape and
        the defaults of the C(settings_map) option of M(protectnet.epns.agent_proxy_policy) (keys left out keep the
        defaults), merged over O(settings_map_file).
    type: dict
  settings_map_file:
    description:
      - A JSON or YAML file on the controller with a settings map, as the C(settings_map_file) option of
        M(protectnet.epns.agent_proxy_policy) reads it.
    type: path
notes:
  - "C(eset_last_sync) is C(lastSyncTime): when the agent last replicated to the ESET PROTECT server. It says
    nothing about the device's connection to the push notification service (EPNS); the probe tests that."
  - Windows, macOS and other non-Linux devices are listed in their C(eset_os_*) group with
    C(epns_probe_supported=false), so roles can skip them with a message.
  - With O(cache=true) a run within O(cache_timeout) makes no API request. The cache holds the device and group
    lists and each device's C(eset_agent_proxy), never the password or a token (nor the devices' C(deviceToken), nor
    policy data).
seealso:
  - name: The inventory page of the collection's documentation
    description: Naming, groups, variables, clones, caching and AWX.
    link: https://github.com/protectnet/epns/blob/main/docs/inventory.md
"""

EXAMPLES = r"""
# fleet.eset_protect.yml: an On-Prem server; the password comes from ESET_PROTECT_PASSWORD
plugin: protectnet.epns.eset_protect
deployment: on_prem
server: era.example.com
username: ansible-api
ca_path: /etc/ssl/eset-ca.pem

# cloud.eset_protect.yml: ESET PROTECT Cloud, Linux servers only, addresses of a VPN never used as ansible_host
plugin: protectnet.epns.eset_protect
deployment: cloud
region: eu
group_paths: [All/Linux/Servers]
os_families: [linux]
ansible_host_exclude: [10.8.0.0/16, 172.17.0.0/16]
ansible_host_sources:
  - expression: "eset_public_ip if eset_device_type == 'DEVICE_TYPE_SERVER' else None"
  - primaryLocalIpAddress
keyed_groups:
  - key: eset_functionality_status
    prefix: status
compose:
  ansible_user: "'root' if eset_os_family == 'linux' else omit"
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: /var/cache/ansible/eset
cache_timeout: 600
"""

import contextlib  # noqa: E402
import os  # noqa: E402
import typing as t  # noqa: E402

from ansible.errors import AnsibleError, AnsibleParserError  # noqa: E402
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._argspec import eset_api_argument_spec  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._client import ConnectionOptions, EsetClient  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._endpoints import PAGE_LIMITS  # noqa: E402
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._errors import (  # noqa: E402
    EsetApiError,
    EsetAuthError,
    EsetConfigError,
    redact,
)
from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._resources import DeviceApi  # noqa: E402
from ansible_collections.protectnet.epns.plugins.plugin_utils._eset_inventory import _agent_proxy  # noqa: E402
from ansible_collections.protectnet.epns.plugins.plugin_utils._eset_inventory._device import without_private_fields  # noqa: E402
from ansible_collections.protectnet.epns.plugins.plugin_utils._eset_inventory._model import Inventory, build  # noqa: E402
from ansible_collections.protectnet.epns.plugins.plugin_utils._eset_inventory._options import inventory_options  # noqa: E402

FILE_SUFFIXES = (".eset_protect.yml", ".eset_protect.yaml")
CONNECTION_OPTIONS = tuple(eset_api_argument_spec())
# The environment variables of the connection options: the modules' argspec fallbacks, one list for both.
ENVIRONMENT = tuple(name for spec in eset_api_argument_spec().values() if "fallback" in spec
                    for name in spec["fallback"][1])
INVENTORY_OPTIONS = ("ansible_host_sources", "ansible_host_exclude", "group_paths", "os_families", "clones",
                     "group_prefix")


@contextlib.contextmanager
def empty_means_unset(names: t.Sequence[str]) -> t.Iterator[None]:
    """While the options are read, a variable set to "" is absent: AWX injects "" for an empty credential field,
    which would otherwise be a port of "" or a ca_path of the current directory."""
    saved = {name: os.environ.pop(name) for name in names if os.environ.get(name) == ""}
    try:
        yield
    finally:
        os.environ.update(saved)


def _required_hint(message: str) -> str:
    """Where a missing connection option comes from: the file, or the environment an AWX credential fills."""
    for name, spec in eset_api_argument_spec().items():
        named = f"'{name}'" in message or message.rstrip().endswith(f"setting: {name}")  # 2.19 / 2.16 wording
        if named and "fallback" in spec:
            variable = spec["fallback"][1][0]
            return (f"; set {name} in the file or {variable} in the environment (in AWX, attach a credential of "
                    "type 'ESET PROTECT On-Prem API' or 'ESET PROTECT Cloud API' to the inventory source)")
    return ""


def _api_failure(exc: EsetApiError, options: ConnectionOptions) -> str:
    if isinstance(exc, EsetAuthError):
        what = f"logging in to ESET PROTECT ({options.deployment}) as {options.username!r} failed"
        if exc.status in (400, 401, 403):
            what += " (wrong username or password, or a user without API access)"
    elif exc.status is None:
        what = f"ESET PROTECT ({options.deployment}) cannot be reached"
    else:
        what = f"listing devices from ESET PROTECT ({options.deployment}) failed"
    return f"eset_protect: {what}: {exc}"


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "protectnet.epns.eset_protect"
    proxy_map: t.Optional[t.Dict[str, t.Any]] = None  # the agent proxy settings map; None: agent_proxy is off

    def verify_file(self, path: str) -> bool:
        return bool(super().verify_file(path)) and path.endswith(FILE_SUFFIXES)

    def parse(self, inventory: t.Any, loader: t.Any, path: str, cache: bool = True) -> None:
        super().parse(inventory, loader, path, cache)
        with empty_means_unset(ENVIRONMENT):
            try:
                self._read_config_data(path)
            except AnsibleError as exc:
                raise AnsibleParserError(f"eset_protect: {path}: {exc.message}{_required_hint(exc.message)}") from None
        try:
            options = inventory_options({name: self.get_option(name) for name in INVENTORY_OPTIONS})
            self.proxy_map = _agent_proxy.settings_map(self.get_option("settings_map"),
                                                       self.get_option("settings_map_file")) \
                if self.get_option("agent_proxy") else None
        except ValueError as exc:
            raise AnsibleParserError(f"eset_protect: {path}: {exc}") from None
        listing, from_cache = self._listing(path, cache)
        model = build(listing["devices"], listing["groups"], options, self._evaluate, listing["deployment"])
        if self.proxy_map is not None:
            proxies = listing.get("agent_proxy") or {}
            for variables in model.hosts.values():
                variables["eset_agent_proxy"] = proxies.get(variables["eset_uuid"])
        model.summary.update(requests=0 if from_cache else listing["requests"], pages=listing["pages"],
                             from_cache=from_cache)
        self._populate(model)
        for warning in model.warnings:
            self.display.warning(f"eset_protect: {warning}")

    def _listing(self, path: str, cache: bool) -> t.Tuple[t.Dict[str, t.Any], bool]:
        """The device and group lists: from the cache within cache_timeout when cache is on, else from the API."""
        use_cache = bool(self.get_option("cache"))
        key = self.get_cache_key(path)
        if use_cache and cache:
            try:
                cached = dict(self._cache[key])
                if self.proxy_map is None or cached.get("agent_proxy_map") == self.proxy_map:
                    return cached, True
            except KeyError:
                pass
        listing = self._fetch()
        if use_cache:
            self._cache[key] = listing
        return listing, False

    def _connection(self) -> ConnectionOptions:
        params = {name: self.get_option(name) for name in CONNECTION_OPTIONS}
        deployment = params["deployment"]
        page_size = self.get_option("page_size")
        limit = PAGE_LIMITS.get(deployment)
        if page_size is not None and limit and not 0 < page_size <= limit:
            raise AnsibleParserError(f"eset_protect: page_size {page_size} is not between 1 and {limit}, the page "
                                     f"limit of deployment {deployment}")
        params["page_size"] = page_size or limit
        return ConnectionOptions.from_params(params)

    def _fetch(self) -> t.Dict[str, t.Any]:
        options = self._connection()
        try:
            client = EsetClient(options, warn=self.display.warning, log=self.display.vvv)
        except EsetConfigError as exc:
            raise AnsibleParserError(f"eset_protect: {exc}") from None
        api = DeviceApi(client)
        listing: t.Dict[str, t.Any] = {"deployment": options.deployment}
        try:
            groups = api.list_groups(options.page_size)
            devices = api.list_devices(options.page_size)
            if self.proxy_map is not None:
                listing["agent_proxy"] = _agent_proxy.fetch(client, devices, groups, self.proxy_map,
                                                            options.page_size or api.page_limit(),
                                                            self.display.warning)
                listing["agent_proxy_map"] = self.proxy_map
        except EsetApiError as exc:
            message = redact(_api_failure(exc, options), client.secrets | {options.password})
            raise AnsibleParserError(message) from None
        listing.update(devices=[without_private_fields(d) for d in devices], groups=groups,
                       requests=client.stats.requests, pages=client.stats.pages)
        return listing

    def _evaluate(self, expression: str, variables: t.Mapping[str, t.Any]) -> t.Any:
        """An {expression: ...} entry of ansible_host_sources, through constructed's templating."""
        try:
            return self._compose(expression, variables)
        except Exception as exc:  # a template error of any kind: strict decides whether it fails the inventory
            if self.get_option("strict"):
                raise AnsibleParserError(f"eset_protect: ansible_host_sources: expression {expression!r} "
                                         f"failed: {exc}") from None
            return None

    def _populate(self, model: Inventory) -> None:
        for group in model.groups:
            self.inventory.add_group(group)
        for group, parent in model.groups.items():
            if parent:
                self.inventory.add_child(parent, group)
        for host, variables in model.hosts.items():
            self.inventory.add_host(host)
            for name, value in variables.items():
                self.inventory.set_variable(host, name, value)
        for group, hosts in model.members.items():
            for host in hosts:
                self.inventory.add_child(group, host)
        self.inventory.set_variable("all", "eset_inventory", model.summary)
        strict = self.get_option("strict")
        for host, variables in model.hosts.items():
            self._set_composite_vars(self.get_option("compose"), variables, host, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), variables, host, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), variables, host, strict=strict)
