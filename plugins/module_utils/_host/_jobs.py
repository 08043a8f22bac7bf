# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# What a job the collection installs on a host (the firewall's refresh job, the monitor's runner) shares: its own
# code copied from the modules Python has loaded (also out of AnsiballZ's zip, where no file exists to copy), and a
# cron line for an interval that both cron and a systemd timer keep evenly.
from __future__ import annotations

import sys
import typing as t

_PARENT = __name__.rsplit(".", 2)[0]  # ...plugins.module_utils


def loaded_sources(packages: t.Collection[str], single: t.Collection[str] = (),
                   skip: t.Collection[str] = ()) -> t.Dict[str, str]:
    """The source of every loaded module of `packages` (and the single modules `single`), by path relative to
    module_utils (`_probe/_engine.py`, `_host/__init__.py`, `_epns.py`), leaving out the paths in `skip`."""
    sources: t.Dict[str, str] = {}
    for name, module in sorted(sys.modules.items()):
        parts = name[len(_PARENT) + 1:].split(".") if name.startswith(_PARENT + ".") else []
        if module is None or not parts or not (parts[0] in packages or (len(parts) == 1 and parts[0] in single)):
            continue
        loader = getattr(module, "__loader__", None)
        source = loader.get_source(name) if loader is not None and hasattr(loader, "get_source") else None
        filename = "/".join(parts) + ("/__init__.py" if hasattr(module, "__path__") else ".py")
        if source is not None and filename not in skip:
            sources[filename] = source
    return sources


def cron_schedule(minutes: int) -> str:
    """The cron times of an interval under an hour, or of whole hours up to a day."""
    if minutes < 60:
        return f"*/{minutes} * * * *"
    hours = minutes // 60
    return "0 0 * * *" if hours == 24 else f"0 */{hours} * * *"
