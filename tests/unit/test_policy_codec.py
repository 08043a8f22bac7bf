"""The policy data codec: byte-exact round trips, minimal re-encoding, tree helpers, clear errors."""
from __future__ import annotations

import base64
import json
import lzma

import pytest
from _policy_vectors import AGENT_SETTINGS, ar, b64, format1, format2, lzma_alone
from ansible_collections.protectnet.epns.plugins.module_utils._eset_policy import _codec as codec

F1 = format1("endpoint", {"gui": {"UI_CONFIG": {"ce_flags": "0", "ShowSplash": {
    "ce_flags": "4", "ce_type": "9", "ce_value": "1"}, "Hidden": {"ce_array": "1", "ce_flags": "4",
                                                                   "ce_array_order": ""}}}})


def members(raw: bytes) -> dict:
    data = codec.PolicyData(raw)
    return {m.name: m for m in data.members}


@pytest.mark.parametrize("raw", [
    F1,
    format2(),
    format2(extra_line=False),
    format2(header={"policy": {"format": 2, "written_by_ce": "vector", "data": {"standalone": {"Settings": {
        "Updater": {"ce_flags": 0, "Enabled": {"ce_flags": 4, "ce_type": 6, "ce_value": 1}}}}}}}),
    b'{"policy":{"format":2,"data":{"standalone":{"Settings":{}}}}}',      # header only, no archive
    b'{"policy":{"format":1}}\n' + ar([("nested.lzma", lzma_alone(b"abc\n" + base64.b64encode(F1)))]),
    b'{ "policy" : { "format" : "1", "data" : {} } }',                     # spacing ESET does not write
], ids=["format1", "format2", "format2-one-line", "format2-inline-settings", "format2-header-only", "nested",
        "spaced-json"])
def test_untouched_policy_round_trips_byte_for_byte(raw: bytes) -> None:
    data = codec.decode(b64(raw))
    assert data.encode() == raw
    assert codec.decode(data.encode_b64()).encode() == raw


def test_format2_structure_is_read() -> None:
    data = codec.PolicyData(format2())
    assert data.format == "2" and data.has_archive and not data.string_scalars
    assert data.summary()["archive_members"] == ["feature.SomeLongFeatureName.lzma", "agent_vector.lzma",
                                                 "info.json", "userData.json"]
    sections = data.sections()
    assert list(sections) == ["feature.SomeLongFeatureName", "agent_vector", "agent_vector@0.9"]
    assert sections["agent_vector"]["Settings"] == AGENT_SETTINGS
    flat = codec.flatten(sections)
    assert flat["agent_vector/Settings/Logging/Verbosity"] == "3"
    assert flat["feature.SomeLongFeatureName/Enabled"] == "1"


def test_format1_structure_is_read() -> None:
    data = codec.PolicyData(F1)
    assert data.format == "1" and not data.has_archive and data.string_scalars
    assert codec.flatten(data.sections()) == {"endpoint/gui/UI_CONFIG/ShowSplash": "1",
                                             "endpoint/gui/UI_CONFIG/Hidden": []}


def test_changing_one_member_recompresses_only_that_member() -> None:
    raw = format2()
    before = members(raw)
    data = codec.PolicyData(raw)
    codec.set_leaf(data.sections()["agent_vector"], "Settings/Proxy/Host", "bridge.lab", ce_type=1)
    out = data.encode()
    assert out != raw
    after = members(out)
    for name in ("feature.SomeLongFeatureName.lzma", "info.json", "userData.json", "//"):
        assert after[name].header == before[name].header and after[name].data == before[name].data, name
    changed = after["agent_vector.lzma"]
    # same name reference, date, owner, mode; new size; same LZMA properties and dictionary size
    assert changed.header[:48] == before["agent_vector.lzma"].header[:48]
    assert int(changed.header[48:58]) == len(changed.data)
    assert changed.data[:5] == before["agent_vector.lzma"].data[:5]
    lines = lzma.decompress(changed.data, format=lzma.FORMAT_ALONE).split(b"\n")
    assert json.loads(lines[0])["policy"]["data"]["Settings"]["Proxy"]["Host"] == {
        "ce_flags": 4, "ce_type": 1, "ce_value": "bridge.lab"}
    assert lines[1] == json.dumps({"policy": {"product": "agent_vector", "version": "0.9", "data": {}}},
                                  separators=(",", ":")).encode()  # the untouched line is kept as it was
    again = codec.PolicyData(out)
    assert codec.flatten(again.sections())["agent_vector/Settings/Proxy/Host"] == "bridge.lab"
    assert again.encode() == out


def test_padding_follows_the_new_size() -> None:
    raw = format2()
    for value in ("a", "ab", "abc", "abcd"):
        data = codec.PolicyData(raw)
        codec.set_leaf(data.sections()["agent_vector"], "Settings/X", value)
        out = data.encode()
        assert codec.PolicyData(out).encode() == out
        member = members(out)["agent_vector.lzma"]
        assert member.pad == (b"\n" if len(member.data) % 2 else b"")


def test_changing_the_header_keeps_the_archive_bytes() -> None:
    raw = format2(header={"policy": {"format": 2, "data": {"standalone": {"Settings": {}}}}})
    data = codec.PolicyData(raw)
    codec.set_leaf(data.sections()["standalone"], "Settings/A", 1, ce_type=6)
    out = data.encode()
    assert out.split(b"\n", 1)[1] == raw.split(b"\n", 1)[1]
    assert json.loads(out.split(b"\n", 1)[0])["policy"]["data"]["standalone"]["Settings"]["A"] == {
        "ce_flags": 4, "ce_type": 6, "ce_value": 1}


def test_format1_values_are_written_as_strings() -> None:
    data = codec.new_format1("agent")
    created = codec.set_leaf(data.sections()["agent"], "settings/Proxy/Port", 3128, ce_type=3,
                             as_string=data.string_scalars)
    codec.set_leaf(data.sections()["agent"], "settings/Proxy/Use", True, ce_type=6, as_string=True)
    assert created == ["settings", "settings/Proxy", "settings/Proxy/Port"]
    doc = json.loads(data.encode())
    assert doc["policy"]["format"] == "1"
    assert doc["policy"]["data"]["agent"]["settings"] == {"ce_flags": "0", "Proxy": {
        "ce_flags": "0", "Port": {"ce_flags": "4", "ce_type": "3", "ce_value": "3128"},
        "Use": {"ce_flags": "4", "ce_type": "6", "ce_value": "1"}}}
    assert data.sections()["agent"]["settings"]["Proxy"]["Port"]["ce_value"] == "3128"  # the edited tree itself
    assert "Nope" not in data.sections()["agent"]["settings"]


def test_set_leaf_keeps_other_attributes_and_refuses_bad_paths() -> None:
    tree = {"A": {"ce_flags": 4, "ce_type": 9, "ce_value": 0, "ce_extra": "x"}, "S": "scalar"}
    assert codec.set_leaf(tree, "A", 1) == []
    assert tree["A"] == {"ce_flags": 4, "ce_type": 9, "ce_value": 1, "ce_extra": "x"}
    with pytest.raises(codec.PolicyDataError, match="not a container"):
        codec.set_leaf(tree, "S/B", 1)
    with pytest.raises(codec.PolicyDataError, match="ce_ attribute"):
        codec.set_leaf(tree, "A/ce_value", 1)
    with pytest.raises(codec.PolicyDataError, match="empty node path"):
        codec.set_leaf(tree, "//", 1)


def test_nested_policies_are_decoded_for_inspection() -> None:
    raw = b'{"policy":{"format":1}}\n' + ar([("originalPolicies.lzma", lzma_alone(
        base64.b64encode(F1) + b"\n" + base64.b64encode(format2()) + b"\nnot-base64!"))])
    data = codec.PolicyData(raw)
    assert data.sections() == {}
    assert [n.format for n in data.nested()] == ["1", "2"]


def test_normalize_makes_formats_comparable() -> None:
    assert codec.normalize({"a": 1, "b": True, "c": [1, "2"], "d": None}) == {"a": "1", "b": "1",
                                                                              "c": ["1", "2"], "d": ""}


BAD = [
    ("", "empty"),
    ("%%%not base64%%%", "not valid base64"),
    (b64(b"\x00\x01binary"), "does not start with a JSON object"),
    (b64(b'{"policy": '), "not UTF-8 JSON"),
    (b64(b'{"settings": {}}'), "not a policy"),
    (b64(b'{"policy": {"format": 7}}'), "unknown policy format 7"),
    (b64(b'{"policy": {"format": "1", "data": []}}'), "policy.data is not an object"),
    (b64(format2()[:-40]), "truncated archive"),
    (b64(b'{"policy":{"format":2}}\n!<arch>\nshort'), "truncated archive: member header"),
    (b64(b'{"policy":{"format":2}}\n' + ar([("a.lzma", b"\x5d\x00\x00\x01\x00" + b"\xff" * 8 + b"garbage")])),
     "broken LZMA stream"),
    (b64(b'{"policy":{"format":2}}\n' + ar([("a.lzma", b"\x5d\x00")])), "shorter than its 13-byte header"),
    (b64(b'{"policy":{"format":2}}\n' + ar([("a.lzma", b"\xff" * 20)])), "invalid LZMA properties"),
    (b64(b'{"policy":{"format":2}}\n' + ar([("a.lzma", lzma_alone(b"{not json"))])), "line 1 is not UTF-8 JSON"),
    (b64(b'{"policy":{"format":2}}\n!<arch>\n' + b"/99             0           0     0     644     2         `\n"
         b"{}"), "outside the long-name table"),
    (b64(b'{"policy":{"format":2}}\n!<arch>\n' + b"a/              0           0     0     644     xx        `\n"),
     "no valid size"),
    (b64(b'{"policy":{"format":2}}\n!<arch>\n' + b"a/              0           0     0     644     2         XX"),
     "does not end with"),
]


@pytest.mark.parametrize(("text", "words"), BAD, ids=[w for _t, w in BAD])
def test_malformed_data_is_a_clear_error(text: str, words: str) -> None:
    with pytest.raises(codec.PolicyDataError, match=words):
        codec.decode(text)
