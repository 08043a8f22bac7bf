"""Policy data vectors the project builds itself, in the layouts ESET-FACTS §4 describes (no ESET file is copied).

Written independently of the codec under test: a plain GNU ar writer and the stdlib LZMA-alone encoder.
"""
from __future__ import annotations

import base64
import json
import lzma
import typing as t


def compact(value: t.Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def format1(section: str, nodes: t.Dict[str, t.Any]) -> bytes:
    return compact({"policy": {"format": "1", "version_major": "4294967295", "version_minor": "4294967295",
                               "version_build": "4294967295", "data": {section: nodes}}})


def lzma_alone(content: bytes, dict_size: int = 1 << 17) -> bytes:
    return lzma.compress(content, format=lzma.FORMAT_ALONE,
                         filters=[{"id": lzma.FILTER_LZMA1, "dict_size": dict_size, "lc": 3, "lp": 0, "pb": 2}])


def ar_header(name: str, size: int, date: str = "0") -> bytes:
    header = "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n".format(name, date, "0", "0", "644", size).encode()
    assert len(header) == 60
    return header


def ar(members: t.Sequence[t.Tuple[str, bytes]], date: str = "1700000000", table_date: str = "0") -> bytes:
    """A GNU ar archive: long names (over 15 characters with the slash) in a // table, odd members padded."""
    table = b""
    names = []
    for name, _data in members:
        if len(name) + 1 > 16:
            names.append(f"/{len(table)}")
            table += name.encode() + b"/\n"
        else:
            names.append(name + "/")
    out = b"!<arch>\n"
    if table:
        out += ar_header("//", len(table), table_date) + table + (b"\n" if len(table) % 2 else b"")
    for (_name, data), ref in zip(members, names):
        out += ar_header(ref, len(data), date) + data + (b"\n" if len(data) % 2 else b"")
    return out


AGENT_SETTINGS = {
    "ce_flags": 0,
    "Logging": {"ce_flags": 0, "Verbosity": {"ce_flags": 4, "ce_type": 2, "ce_value": 3}},
    "Connection": {"ce_flags": 0, "Interval": {"ce_flags": 4, "ce_type": 3, "ce_value": 60}},
}


def format2(product: str = "agent_vector", settings: t.Optional[t.Dict[str, t.Any]] = None,
            extra_line: bool = True, header: t.Optional[t.Dict[str, t.Any]] = None) -> bytes:
    """Header + archive with a long-named feature member, a product member, info.json and an odd userData.json."""
    doc = compact({"policy": {"product": product, "version": "1.0",
                              "data": {"Settings": settings if settings is not None else AGENT_SETTINGS}}})
    lines = doc + (b"\n" + compact({"policy": {"product": product, "version": "0.9", "data": {}}})
                   if extra_line else b"")
    feature = compact({"policy": {"feature": "SomeLongFeatureName", "version": "1.0",
                                  "data": {"Enabled": {"ce_flags": 4, "ce_value": 1}}}})
    members = [
        ("feature.SomeLongFeatureName.lzma", lzma_alone(feature, 1 << 16)),
        (product + ".lzma", lzma_alone(lines)),
        ("info.json", b'{\n "written_by_ce":"vector"\n}'),
        ("userData.json", b'"uuid=00000000-0000-0000-0000-000000000001,name="'),
    ]
    head = compact(header if header is not None else {"policy": {"format": 2}})
    return head + b"\n" + ar(members)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
