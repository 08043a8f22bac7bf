# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The backend registry: every implemented backend by name, and the choice `backend: auto` makes among them. Its
# own module so that the engine (one module run) and the refresh job (one timer run) both use it without importing
# each other.
from __future__ import annotations

import typing as t

from ._base import BackendOptions, FirewallBackend, Runner
from ._firewalld import FirewalldBackend
from ._iptables import IptablesBackend
from ._model import FirewallError
from ._nftables import NftablesBackend
from ._ufw import UfwBackend

# Registered implementations. A new backend adds itself here (and to AUTO_ORDER); see README.md.
BACKENDS: t.Dict[str, t.Type[FirewallBackend]] = {
    "nftables": NftablesBackend,
    "iptables": IptablesBackend,
    "firewalld": FirewalldBackend,
    "ufw": UfwBackend,
}
# Every backend name the module accepts, implemented or not yet.
KNOWN_BACKENDS = ("nftables", "firewalld", "iptables", "ufw")
# auto: the first backend in this order that is a running daemon (firewalld, ufw), already holds our objects,
# carries a default-deny egress, or has rules at all; failing all that, the first usable in FALLBACK_ORDER.
AUTO_ORDER = ("firewalld", "ufw", "iptables", "nftables")
FALLBACK_ORDER = ("nftables", "iptables")
DAEMON_BACKENDS = ("firewalld", "ufw")


def make_backend(name: str, runner: Runner, options: BackendOptions) -> FirewallBackend:
    if name not in KNOWN_BACKENDS:
        raise FirewallError(f"backend {name!r} is unknown (expected auto or one of {', '.join(KNOWN_BACKENDS)})")
    if name not in BACKENDS:
        raise FirewallError(f"backend {name} is not implemented in this version of protectnet.epns (implemented: "
                            f"{', '.join(sorted(BACKENDS))})")
    return BACKENDS[name](runner, options)


def select_backend(wanted: str, runner: Runner, options: BackendOptions) -> t.Tuple[FirewallBackend, str]:
    """The backend to use and a sentence saying why (auto says which one it picked)."""
    if wanted != "auto":
        backend = make_backend(wanted, runner, options)
        backend.require_usable()
        return backend, f"{wanted} (as requested)"
    found = {name: cls.detect(runner) for name, cls in BACKENDS.items()}
    usable = {name: d for name, d in found.items() if d.installed and d.usable}
    reasons = [
        ("is the running firewall daemon", lambda d: d.name in DAEMON_BACKENDS and d.active),
        ("already holds the EPNS rules", lambda d: d.owns),
        ("carries the host's default-deny egress", lambda d: d.deny),
        ("has the host's rules", lambda d: d.active),
    ]
    for reason, test in reasons:
        for name in AUTO_ORDER:
            if name in usable and test(usable[name]):
                return make_backend(name, runner, options), f"auto: {name} {reason} ({usable[name].detail})"
    for name in FALLBACK_ORDER:
        if name in usable:
            return (make_backend(name, runner, options),
                    f"auto: {name} (no firewall in use yet; {name} is installed)")
    details = "; ".join(f"{name}: {d.detail}" for name, d in found.items())
    raise FirewallError(f"backend auto: no usable firewall backend on this host ({details})")
