"""An emulator of the ESET PROTECT REST API (On-Prem 13.x and Cloud / ESET Connect) for tests.

    from emulator import Emulator
    with Emulator("cloud") as emu:           # throwaway CA at emu.ca_path
        base = emu.base_urls["policy-management"]

See README.md in this directory for the contract (constructor, CLI, control API, what is validated).
"""
from .fleet import fleet
from .pki import Pki, make_pki
from .seed import group_uuid, uid
from .server import DEFAULT_USERS, Emulator

__all__ = ["DEFAULT_USERS", "Emulator", "Pki", "fleet", "group_uuid", "make_pki", "uid"]
