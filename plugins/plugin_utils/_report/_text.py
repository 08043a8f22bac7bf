# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# Text rules of the report: URL credentials redacted, one terminal-safe line, hosts in natural order; and input
# data as plain Python types.
from __future__ import annotations

import re
import typing as t

_CREDENTIALS_IN_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_NATURAL = re.compile(r"(\d+)")


def redact_url_credentials(value: str) -> str:
    """Replace the user:password part of any URL in ``value`` with ``***``."""
    return _CREDENTIALS_IN_URL.sub(r"\g<scheme>***@", value)


def plain_text(value: t.Any) -> str:
    """One line of terminal-safe text: control characters (ANSI escapes, newlines) become visible escapes."""
    text = "" if value is None else str(value)
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)


def natural_key(name: str) -> t.Tuple[t.Tuple[t.Tuple[int, t.Union[int, str]], ...], str]:
    """Sort key: agent2 before agent10; the raw name breaks ties, so the order is total and stable."""
    parts: t.List[t.Tuple[int, t.Union[int, str]]] = []
    for chunk in _NATURAL.split(name.lower()):
        if not chunk:
            continue
        parts.append((0, int(chunk)) if chunk.isdigit() else (1, chunk))
    return tuple(parts), name


def plain_data(value: t.Any) -> t.Any:
    """A copy made of plain dicts, lists, str, int, float, bool and None, in one pass.

    Task arguments arrive as ansible-core's lazily templated containers and tagged strings: every later walk over
    10,000 results (rows, JSON, digests) would pay that per access, so the report pays it once, here.
    """
    kind = type(value)
    if kind is str or kind is int or kind is bool or kind is float or value is None:
        return value
    if isinstance(value, dict) or (not isinstance(value, (list, tuple, str)) and isinstance(value, t.Mapping)):
        return {str(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_data(v) for v in value]
    if isinstance(value, str):
        return str.__str__(value)  # an exact str, whatever the subclass's own __str__ returns
    for base in (bool, int, float):
        if isinstance(value, base):
            return base(value)
    return value
