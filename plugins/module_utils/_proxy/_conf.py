# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# Configuration files as text: reading directives across includes, the marked include block.
from __future__ import annotations

import glob
import os
import typing as t
from dataclasses import dataclass

from .._host._files import read_text
from ._model import BEGIN_MARK, END_MARK, ProxyError

MAX_INCLUDE_DEPTH = 16


@dataclass(frozen=True)
class Directive:
    path: str
    line: int
    name: str  # as written
    args: t.Tuple[str, ...]

    @property
    def source(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def value(self) -> str:
        return " ".join(self.args)


def logical_lines(text: str) -> t.Iterator[t.Tuple[int, str]]:
    """(first line number, text) with comments dropped and backslash continuations joined."""
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line and not line.startswith("#"):
            yield start, line


def read_config(path: str) -> t.Optional[str]:
    """read_text, with a file that exists but cannot be read reported as the ProxyError the module shows."""
    try:
        return read_text(path)
    except OSError as exc:
        raise ProxyError(f"cannot read {path}: {exc}") from None


def expand(pattern: str, base: str) -> t.List[str]:
    """An include argument as the proxies read it: relative to base, globbed, sorted."""
    pattern = pattern.strip("\"'")
    full = pattern if os.path.isabs(pattern) else os.path.join(base, pattern)
    if glob.has_magic(full):
        return sorted(glob.glob(full))
    if os.path.isdir(full):  # Apache includes every file of a directory
        return sorted(p for p in glob.glob(os.path.join(full, "*")) if os.path.isfile(p))
    return [full]


def walk(path: str, overrides: t.Mapping[str, t.Optional[str]], is_include: t.Callable[[str], bool],
         base: str, skip_section: t.Optional[str] = None, depth: int = 0) -> t.Iterator[Directive]:
    """Every directive in file order, includes followed. overrides: path -> text to read instead (None: absent).
    skip_section: a section name (e.g. virtualhost) whose content is not server-wide and is left out."""
    if depth > MAX_INCLUDE_DEPTH:
        raise ProxyError(f"includes nested deeper than {MAX_INCLUDE_DEPTH} at {path}")
    text = overrides[path] if path in overrides else read_config(path)
    if text is None:
        return
    nested = 0
    for number, line in logical_lines(text):
        words = line.split()
        name = words[0]
        if skip_section:
            lower = name.lower()
            if lower == f"<{skip_section}":
                nested += 1
            elif lower == f"</{skip_section}>":
                nested = max(0, nested - 1)
            if nested:
                continue
        if is_include(name):
            for arg in words[1:]:
                for sub in expand(arg, base):
                    yield from walk(sub, overrides, is_include, base, skip_section, depth + 1)
            continue
        yield Directive(path, number, name, tuple(words[1:]))


# -- the marked include block -------------------------------------------------------------------------------------
def find_block(lines: t.Sequence[str]) -> t.Optional[t.Tuple[int, int]]:
    """Indexes of the BEGIN and END marker lines, or None."""
    begin = next((i for i, line in enumerate(lines) if line.rstrip("\r\n") == BEGIN_MARK), None)
    if begin is None:
        return None
    end = next((i for i in range(begin + 1, len(lines)) if lines[i].rstrip("\r\n") == END_MARK), None)
    if end is None:
        raise ProxyError(f"the managed include block starts but never ends (no line {END_MARK!r})")
    return begin, end


def block_lines(include_line: str) -> t.List[str]:
    return [BEGIN_MARK + "\n", include_line + "\n", END_MARK + "\n"]


def with_block(text: str, include_line: str, position: t.Callable[[t.Sequence[str]], int]) -> str:
    """text with the managed block: replaced where it is, else inserted at position(lines) (len(lines): at the end)."""
    lines = text.splitlines(keepends=True)
    found = find_block(lines)
    if found:
        begin, end = found
        return "".join([*lines[:begin], *block_lines(include_line), *lines[end + 1:]])
    at = position(lines)
    if at >= len(lines) and lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"  # keep the last directive on its own line
    return "".join([*lines[:at], *block_lines(include_line), *lines[at:]])


def without_block(text: str) -> str:
    lines = text.splitlines(keepends=True)
    found = find_block(lines)
    if not found:
        return text
    begin, end = found
    return "".join([*lines[:begin], *lines[end + 1:]])


def first_directive_index(lines: t.Sequence[str], names: t.Collection[str]) -> t.Optional[int]:
    wanted = {n.lower() for n in names}
    for index, line in enumerate(lines):
        words = line.split()
        if words and words[0].lower() in wanted:
            return index
    return None
