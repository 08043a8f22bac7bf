"""The two byte layouts of a legacy policy's `configuration.data` (ESET-FACTS §4): build them for seed data
and check the ones clients send, so a broken codec fails here rather than on a real server.

Format 1: one JSON object, every scalar a string. Format 2: a JSON header line, then a GNU `ar` archive whose
`*.lzma` members are LZMA-alone streams of JSON lines and whose other members are JSON.
"""
from __future__ import annotations

import base64
import binascii
import json
import lzma
from typing import Any, Dict, List, Optional, Tuple

AR_MAGIC = b"!<arch>\n"
MAX_DATA = 16 * 1024 * 1024  # far above any real policy; stops a runaway client from eating memory
AR_DATE = "1754396716"  # fixed so seed blobs are byte-identical from run to run


class PolicyDataError(ValueError):
    pass


def stringify(tree: Any) -> Any:
    """Format 1 keeps every scalar as a string."""
    if isinstance(tree, dict):
        return {k: stringify(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [stringify(v) for v in tree]
    return str(int(tree)) if isinstance(tree, bool) else str(tree)


def format1(short_name: str, nodes: Dict[str, Any]) -> str:
    doc = {"policy": {"format": "1", "version_major": "4294967295", "version_minor": "4294967295",
                      "version_build": "4294967295", "data": {short_name: stringify(nodes)}}}
    return base64.b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode()


def ar_archive(members: List[Tuple[str, bytes]]) -> bytes:
    """GNU ar: names end in '/', names over 15 characters go to a '//' table and are referenced as /offset."""
    table = b""
    refs = []
    for name, _ in members:
        if len(name) > 15:
            refs.append(f"/{len(table)}")
            table += name.encode() + b"/\n"
        else:
            refs.append(name + "/")
    out = bytearray(AR_MAGIC)
    if table:
        out += _member("//", table)
    for ref, (_, data) in zip(refs, members):
        out += _member(ref, data)
    return bytes(out)


def _member(name: str, data: bytes) -> bytes:
    # ESET's sample fills date/owner/mode even in the '//' table header, so every header is written alike.
    header = f"{name:<16}{AR_DATE:<12}{'0':<6}{'0':<6}{'644':<8}{len(data):<10}`\n"
    return header.encode() + data + (b"\n" if len(data) % 2 else b"")


def format2(product_short: str, version: str, settings: Dict[str, Any], member: str = "",
            data: Optional[Dict[str, Any]] = None) -> str:
    """Header line + ar archive with one LZMA member holding the settings and an info.json member.

    ``data`` replaces the member's whole ``data`` object (default ``{"Settings": settings}``), for node paths that
    start elsewhere (the agent proxy settings map's ``settings/...``)."""
    body = {"Settings": settings} if data is None else data
    line = json.dumps({"policy": {"product": product_short, "version": version, "data": body}},
                      separators=(",", ":")).encode() + b"\n"
    packed = lzma.compress(line, format=lzma.FORMAT_ALONE)
    info = json.dumps({"written_by_ce": "emulator"}, indent=1).encode()
    archive = ar_archive([(member or f"{product_short}.lzma", packed), ("info.json", info)])
    blob = json.dumps({"policy": {"format": 2}}, separators=(",", ":")).encode() + b"\n" + archive
    return base64.b64encode(blob).decode()


def check(data: str, depth: int = 0) -> Dict[str, Any]:
    """Decode and structurally verify a `data` string; returns a summary, raises PolicyDataError."""
    if depth > 3:
        raise PolicyDataError("policy blobs nested too deep")
    try:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise PolicyDataError(f"data is not valid base64: {exc}") from None
    if not raw:
        raise PolicyDataError("data is empty")
    if len(raw) > MAX_DATA:
        raise PolicyDataError("data too large")
    head, sep, rest = raw.partition(b"\n")
    header = _json(head, "policy header")
    policy = header.get("policy") if isinstance(header, dict) else None
    if not isinstance(policy, dict) or "format" not in policy:
        raise PolicyDataError("policy header has no policy.format")
    if not sep or not rest:
        # A header alone is format 1 (data required) or format 2 with inline settings only.
        fmt = str(policy["format"])
        if fmt == "1" and isinstance(policy.get("data"), dict):
            return {"format": 1, "products": sorted(policy["data"])}
        if fmt == "2" and isinstance(policy.get("data", {}), dict):
            return {"format": 2, "members": []}
        raise PolicyDataError("a header-only policy needs format \"1\" with a data object, or format 2")
    if not rest.startswith(AR_MAGIC):
        raise PolicyDataError("format 2 data: expected an ar archive after the header line")
    members = read_ar(rest)
    for name, body in members:
        if name.endswith(".lzma"):
            try:
                text = lzma.decompress(body, format=lzma.FORMAT_ALONE)
            except lzma.LZMAError as exc:
                raise PolicyDataError(f"member {name}: not an LZMA-alone stream: {exc}") from None
            for number, line in enumerate(text.splitlines(), 1):
                _lzma_line(line, f"member {name} line {number}", depth)
        elif name.endswith(".json"):
            _json(body, f"member {name}")
    return {"format": 2, "members": [name for name, _ in members]}


def _lzma_line(line: bytes, what: str, depth: int) -> None:
    """A line is a JSON document, or (originalPolicies.lzma in ESET's installer sample) a nested base64 blob."""
    line = line.strip()
    if not line:
        return
    if line.startswith(b"{"):
        _json(line, what)
        return
    try:
        check(line.decode("ascii"), depth + 1)
    except (PolicyDataError, UnicodeDecodeError) as exc:
        raise PolicyDataError(f"{what}: neither JSON nor a nested policy blob ({exc})") from None


def read_ar(archive: bytes) -> List[Tuple[str, bytes]]:
    pos, table, members = len(AR_MAGIC), b"", []
    while pos < len(archive):
        header = archive[pos:pos + 60]
        if len(header) < 60 or header[58:60] != b"`\n":
            raise PolicyDataError(f"ar member header at byte {pos} is malformed")
        name = header[:16].decode("ascii", "replace").rstrip()
        try:
            size = int(header[48:58])
        except ValueError:
            raise PolicyDataError(f"ar member at byte {pos} has a bad size") from None
        body = archive[pos + 60:pos + 60 + size]
        if len(body) != size:
            raise PolicyDataError(f"ar member {name!r} is truncated")
        pos += 60 + size + (size & 1)
        if name == "//":
            table = body
            continue
        if name.startswith("/") and name[1:].isdigit():
            offset = int(name[1:])
            end = table.find(b"/\n", offset)
            if end < 0:
                raise PolicyDataError(f"ar long name {name} not in the // table")
            name = table[offset:end].decode("utf-8", "replace")
        elif name.endswith("/"):
            name = name[:-1]
        else:
            raise PolicyDataError(f"ar member name {name!r} does not end in '/'")
        members.append((name, body))
    if not members:
        raise PolicyDataError("ar archive has no members")
    return members


def _json(raw: bytes, what: str) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PolicyDataError(f"{what} is not JSON: {exc}") from None
