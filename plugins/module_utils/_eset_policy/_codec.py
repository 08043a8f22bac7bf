# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""The ``configuration.data`` of a legacy ESET PROTECT policy: decode, edit, encode.

Two byte layouts exist (docs/agent-proxy-policy.md has the details):

* format 1: one UTF-8 JSON object ``{"policy": {"format": "1", ..., "data": {"<product>": {nodes}}}}``, every
  scalar a string;
* format 2: a JSON header line (``{"policy": {"format": 2, ...}}``, optional inline settings under ``data``), then
  ``\\n`` and a GNU ``ar`` archive (``!<arch>\\n``, 60-byte member headers, a ``//`` long-name table, members
  padded to even length). ``*.lzma`` members are LZMA-alone streams holding one JSON document per line; other
  members (``info.json``, ``userData.json``) are kept as they are. A header without an archive also occurs.

Decoding keeps every raw byte: encoding an untouched :class:`PolicyData` returns the input exactly, and a change
re-serialises only what changed (the JSON header, or the changed lines of one LZMA member, re-compressed with that
member's own LZMA properties; its ar header gets the new size and nothing else).

Settings are shown as *sections*: ``{name: tree}``. A section is a key of the header's ``policy.data`` (format 1:
the product short name such as ``endpoint``; format 2: ``standalone``), or one JSON document inside an LZMA member,
named by its ``product`` (``efs_unix``), ``feature.<feature>``, or the member name. Nodes inside a tree are ESET's
``ce_*`` nodes: a container ``{"ce_flags": 0, <children>}``, a leaf ``{"ce_flags": 4, "ce_type": T, "ce_value": V}``,
an array ``{"ce_array": "1", "ce_flags": 4, "ce_value": [...]}``.
"""
from __future__ import annotations

import base64
import binascii
import copy
import json
import re
import typing as t

try:
    import lzma

    HAS_LZMA = True
except ImportError:  # pragma: no cover - Python built without liblzma
    HAS_LZMA = False

AR_MAGIC = b"!<arch>\n"
AR_HEADER_LEN = 60
AR_FMAG = b"`\n"
LZMA_ALONE_HEADER_LEN = 13
# Scalars of a format 1 document are strings; the numbers below are what ESET writes for an unset version.
UNSET_VERSION = "4294967295"
LEAF_FLAGS = 4
CONTAINER_FLAGS = 0


# -- secrets: what results, diffs and errors must not show unless the user asks -----------------------------
MASK = "********"
# Format 2 members whose content is opaque to us (user data, whole embedded policies): every leaf in them is
# treated as secret, whatever its name, because we cannot know what an innocent-looking name holds.
OPAQUE_MEMBERS = ("userData", "originalPolicies")
# Words of a node name (or of a textual ce_type) that mark a password, key or token.
SECRET_WORDS = frozenset(("password", "passwd", "passphrase", "pwd", "pass", "secret", "token", "credential",
                          "credentials", "key", "keys", "apikey", "privatekey", "pin"))
SECRET_TEXT_RE = re.compile(r"password|passwd|passphrase|secret|token|credential|apikey|privatekey", re.I)
WORD_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
PRIVATE_KEY_RE = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")


class PolicyDataError(ValueError):
    """The bytes are not a policy ESET's format 1 or 2 describes; the message says where and why."""


def _dumps(value: t.Any) -> str:
    """Compact JSON as ESET writes it: no spaces, non-ASCII kept."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class _JsonDoc:
    """One JSON document with its raw bytes; re-serialised only when the parsed value changed."""

    def __init__(self, raw: bytes, where: str) -> None:
        self.raw = raw
        try:
            self.value = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise PolicyDataError(f"{where} is not UTF-8 JSON: {exc}") from None
        self._snapshot = copy.deepcopy(self.value)

    @property
    def changed(self) -> bool:
        return bool(self.value != self._snapshot)

    def encode(self) -> bytes:
        return _dumps(self.value).encode("utf-8") if self.changed else self.raw


class ArMember:
    """One member of the ``ar`` archive: raw header, resolved name, raw data and the padding byte as found."""

    def __init__(self, header: bytes, name: str, data: bytes, pad: bytes) -> None:
        self.header = header
        self.name = name
        self.data = data
        self.pad = pad
        self.lines: t.List[t.Union[bytes, _JsonDoc]] = []
        self.is_lzma = False
        self._lzma_filters: t.Optional[t.List[t.Dict[str, int]]] = None

    def decode_lzma(self) -> None:
        if not HAS_LZMA:
            raise PolicyDataError(f"member {self.name!r} is LZMA-compressed but this Python has no lzma module")
        if len(self.data) < LZMA_ALONE_HEADER_LEN:
            raise PolicyDataError(f"member {self.name!r}: LZMA stream shorter than its 13-byte header")
        props = self.data[0]
        if props >= 9 * 5 * 5:
            raise PolicyDataError(f"member {self.name!r}: invalid LZMA properties byte {props}")
        lc, rest = props % 9, props // 9
        lp, pb = rest % 5, rest // 5
        dict_size = int.from_bytes(self.data[1:5], "little")
        self._lzma_filters = [{"id": lzma.FILTER_LZMA1, "dict_size": max(dict_size, 4096), "lc": lc, "lp": lp,
                               "pb": pb}]
        try:
            content = lzma.decompress(self.data, format=lzma.FORMAT_ALONE)
        except lzma.LZMAError as exc:
            raise PolicyDataError(f"member {self.name!r}: broken LZMA stream: {exc}") from None
        self.is_lzma = True
        for index, line in enumerate(content.split(b"\n")):
            if line.startswith(b"{"):
                self.lines.append(_JsonDoc(line, f"member {self.name!r} line {index + 1}"))
            else:
                self.lines.append(line)

    @property
    def changed(self) -> bool:
        return any(isinstance(line, _JsonDoc) and line.changed for line in self.lines)

    def encode(self) -> bytes:
        if not self.changed:
            return self.header + self.data + self.pad
        content = b"\n".join(line.encode() if isinstance(line, _JsonDoc) else line for line in self.lines)
        data = lzma.compress(content, format=lzma.FORMAT_ALONE, filters=self._lzma_filters)
        size = str(len(data)).encode("ascii")
        header = self.header[:48] + size + b" " * (10 - len(size)) + self.header[58:]
        pad = (self.pad or b"\n") if len(data) % 2 else b""
        return header + data + pad


def _parse_ar(blob: bytes) -> t.List[ArMember]:
    if not blob.startswith(AR_MAGIC):
        raise PolicyDataError("the archive does not start with !<arch>")
    members: t.List[ArMember] = []
    long_names = b""
    pos = len(AR_MAGIC)
    while pos < len(blob):
        header = blob[pos:pos + AR_HEADER_LEN]
        if len(header) < AR_HEADER_LEN:
            raise PolicyDataError(f"truncated archive: member header at byte {pos} has {len(header)} of 60 bytes")
        if header[58:60] != AR_FMAG:
            raise PolicyDataError(f"archive member header at byte {pos} does not end with `\\n")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise PolicyDataError(f"archive member header at byte {pos} has no valid size") from None
        start = pos + AR_HEADER_LEN
        data = blob[start:start + size]
        if len(data) < size:
            raise PolicyDataError(f"truncated archive: member at byte {pos} declares {size} bytes, {len(data)} present")
        pad = blob[start + size:start + size + 1] if size % 2 else b""
        raw_name = header[:16].decode("ascii", "replace").rstrip(" ")
        if raw_name == "//":
            long_names = data
            name = "//"
        elif raw_name.startswith("/") and raw_name[1:].isdigit():
            offset = int(raw_name[1:])
            end = long_names.find(b"\n", offset)
            if offset >= len(long_names) or end < 0:
                raise PolicyDataError(f"archive member {raw_name} points outside the long-name table")
            name = long_names[offset:end].decode("utf-8", "replace").rstrip("/")
        else:
            name = raw_name.rstrip("/")
        members.append(ArMember(header, name, data, pad))
        pos = start + size + len(pad)
    return members


class PolicyData:
    """A decoded ``configuration.data``: edit :meth:`sections` in place, then :meth:`encode`."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        if not raw.lstrip().startswith(b"{"):
            raise PolicyDataError("policy data does not start with a JSON object")
        split = raw.find(b"\n" + AR_MAGIC)
        header_raw = raw if split < 0 else raw[:split]
        self._separator = b"" if split < 0 else b"\n"
        self.header = _JsonDoc(header_raw, "the policy header")
        policy = self.header.value.get("policy") if isinstance(self.header.value, dict) else None
        if not isinstance(policy, dict) or "format" not in policy:
            raise PolicyDataError('the JSON is not a policy: no {"policy": {"format": ...}} object')
        if str(policy["format"]) not in ("1", "2"):
            raise PolicyDataError("unknown policy format {!r} (known: 1, 2)".format(policy["format"]))
        if "data" in policy and not isinstance(policy["data"], dict):
            raise PolicyDataError("policy.data is not an object")
        self.members: t.List[ArMember] = []
        if split >= 0:
            self.members = _parse_ar(raw[split + 1:])
            for member in self.members:
                if member.name.endswith(".lzma"):
                    member.decode_lzma()
        self._opaque: t.Set[str] = set()
        self._sections = self._collect_sections()

    # -- identity -------------------------------------------------------------------------------------
    @property
    def format(self) -> str:
        """The declared format, as text: ``"1"`` or ``"2"``."""
        return str(self.header.value["policy"]["format"])

    @property
    def has_archive(self) -> bool:
        return bool(self.members)

    @property
    def string_scalars(self) -> bool:
        """Format 1 documents write every scalar as a string."""
        return isinstance(self.header.value["policy"]["format"], str)

    # -- settings ---------------------------------------------------------------------------------------
    def _collect_sections(self) -> t.Dict[str, t.Dict[str, t.Any]]:
        sections: t.Dict[str, t.Dict[str, t.Any]] = {}
        data = self.header.value["policy"].get("data") or {}
        for key, tree in data.items():
            if isinstance(tree, dict):
                sections[key] = tree
        for member in self.members:
            for line in member.lines:
                if not isinstance(line, _JsonDoc) or not isinstance(line.value, dict):
                    continue
                policy = line.value.get("policy")
                if not isinstance(policy, dict) or not isinstance(policy.get("data"), dict):
                    continue
                if policy.get("product"):
                    name = str(policy["product"])
                elif policy.get("feature"):
                    name = "feature.{}".format(policy["feature"])
                else:
                    name = member.name[:-len(".lzma")]
                if name in sections and policy.get("version"):
                    name = "{}@{}".format(name, policy["version"])
                base, n = name, 2
                while name in sections:
                    name, n = f"{base}#{n}", n + 1
                sections[name] = policy["data"]
                if member.name.split(".", 1)[0] in OPAQUE_MEMBERS:
                    self._opaque.add(name)
        return sections

    def opaque_sections(self) -> t.Set[str]:
        """Sections read from an opaque member (``userData``, ``originalPolicies``): secret as a whole."""
        return set(self._opaque)

    def sections(self) -> t.Dict[str, t.Dict[str, t.Any]]:
        """``{section name: settings tree}``; the trees are live: changing them changes what :meth:`encode` writes."""
        return self._sections

    def add_section(self, name: str) -> t.Dict[str, t.Any]:
        """A new, empty section in the header's ``policy.data`` (how a format 1 policy holds a product)."""
        policy = self.header.value["policy"]
        policy.setdefault("data", {})
        tree: t.Dict[str, t.Any] = {}
        policy["data"][name] = tree
        self._sections[name] = tree
        return tree

    # -- bytes ----------------------------------------------------------------------------------------
    def encode(self) -> bytes:
        if not self.header.changed and not any(member.changed for member in self.members):
            return self.raw
        out = self.header.encode() + self._separator
        if self.members:
            out += AR_MAGIC + b"".join(member.encode() for member in self.members)
        return out

    def encode_b64(self) -> str:
        return base64.b64encode(self.encode()).decode("ascii")

    def nested(self) -> t.List[PolicyData]:
        """Policies carried as base64 lines inside LZMA members (an installer's ``originalPolicies.lzma``).

        Read-only views, for inspection; lines that are not a policy are skipped.
        """
        found: t.List[PolicyData] = []
        for member in self.members:
            for line in member.lines:
                if isinstance(line, bytes) and line.strip():
                    try:
                        found.append(PolicyData(b64decode_strict(line.decode("ascii"))))
                    except (PolicyDataError, UnicodeDecodeError):
                        continue
        return found

    def summary(self) -> t.Dict[str, t.Any]:
        return {
            "format": self.format,
            "archive_members": [m.name for m in self.members if m.name != "//"],
            "sections": list(self._sections),
        }


def b64decode_strict(text: str) -> bytes:
    if not isinstance(text, str) or not text.strip():
        raise PolicyDataError("policy data is empty")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PolicyDataError(f"policy data is not valid base64: {exc}") from None


def decode(data_b64: str) -> PolicyData:
    """Decode ``configuration.data`` (standard base64)."""
    return PolicyData(b64decode_strict(data_b64))


def new_format1(section: str) -> PolicyData:
    """An empty format 1 policy with one (empty) product section, as ESET's create-policy example has it."""
    doc = {"policy": {"format": "1", "version_major": UNSET_VERSION, "version_minor": UNSET_VERSION,
                      "version_build": UNSET_VERSION, "data": {section: {}}}}
    return PolicyData(_dumps(doc).encode("utf-8"))


# -- tree helpers ---------------------------------------------------------------------------------------
def split_path(path: t.Union[str, t.Sequence[str]]) -> t.List[str]:
    parts = [p for p in path.split("/") if p] if isinstance(path, str) else [str(p) for p in path]
    if not parts:
        raise PolicyDataError("empty node path")
    for part in parts:
        if part.startswith("ce_"):
            raise PolicyDataError("node path {!r} names a ce_ attribute, not a node".format("/".join(parts)))
    return parts


def _scalar(value: t.Any, as_string: bool) -> t.Any:
    if isinstance(value, bool):
        value = int(value)
    if as_string:
        return str(value)
    return value


def set_leaf(tree: t.Dict[str, t.Any], path: t.Union[str, t.Sequence[str]], value: t.Any,
             ce_type: t.Optional[int] = None, as_string: bool = False) -> t.List[str]:
    """Set a leaf's ``ce_value`` (and ``ce_flags`` 4, ``ce_type`` when given); create missing containers.

    ``as_string`` writes scalars as format 1 does. Returns the paths of the nodes that had to be created.
    """
    parts = split_path(path)
    created: t.List[str] = []
    node = tree
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = {"ce_flags": _scalar(CONTAINER_FLAGS, as_string)}
            node[part] = child
            created.append("/".join(parts[:depth + 1]))
        elif not isinstance(child, dict):
            raise PolicyDataError("node {!r} is not a container".format("/".join(parts[:depth + 1])))
        node = child
    leaf = node.get(parts[-1])
    if leaf is None:
        leaf = {}
        node[parts[-1]] = leaf
        created.append("/".join(parts))
    elif not isinstance(leaf, dict):
        raise PolicyDataError("node {!r} is not a setting node".format("/".join(parts)))
    leaf["ce_flags"] = _scalar(LEAF_FLAGS, as_string)
    if ce_type is not None:
        leaf["ce_type"] = _scalar(ce_type, as_string)
    leaf["ce_value"] = _scalar(value, as_string)
    return created


def normalize(value: t.Any) -> t.Any:
    """Scalars as text, so ``"1"`` (format 1) and ``1`` (format 2) compare equal."""
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, bool):
        return str(int(value))
    if value is None:
        return ""
    return str(value)


def leaf_value(node: t.Optional[t.Mapping[str, t.Any]]) -> t.Any:
    """The normalised value of a leaf or array node, or None when there is none."""
    if not isinstance(node, dict):
        return None
    if "ce_value" in node:
        return normalize(node["ce_value"])
    if "ce_array" in node:
        return []
    return None


def flatten(sections: t.Mapping[str, t.Mapping[str, t.Any]]) -> t.Dict[str, t.Any]:
    """``{"section/node/.../leaf": normalised value}`` for every leaf and array, in document order."""
    flat: t.Dict[str, t.Any] = {}

    def walk(node: t.Mapping[str, t.Any], prefix: str) -> None:
        value = leaf_value(node)
        if value is not None:
            flat[prefix] = value
        for key, child in node.items():
            if isinstance(child, dict) and not key.startswith("ce_"):
                walk(child, f"{prefix}/{key}")

    for name, tree in sections.items():
        walk(tree, name)
    return flat


def is_secret_name(name: t.Any) -> bool:
    """A node name or textual ``ce_type`` that marks a password, key or token (``ProxyPassword``, ``api_key``)."""
    if not isinstance(name, str):
        return False
    words = {w.lower() for w in WORD_RE.findall(name)}
    return bool(words & SECRET_WORDS) or bool(SECRET_TEXT_RE.search(name))


def _is_secret_leaf(name: str, node: t.Mapping[str, t.Any]) -> bool:
    value = node.get("ce_value")
    return is_secret_name(name) or is_secret_name(node.get("ce_type")) or (
        isinstance(value, str) and bool(PRIVATE_KEY_RE.search(value)))


def _masked(node: t.Dict[str, t.Any], name: str, everything: bool, found: t.Set[str]) -> t.Dict[str, t.Any]:
    out: t.Dict[str, t.Any] = {}
    secret = "ce_value" in node and (everything or _is_secret_leaf(name, node))
    for key, child in node.items():
        if key == "ce_value" and secret:
            for value in child if isinstance(child, list) else [child]:
                if value not in (None, ""):
                    found.add(str(value))
            out[key] = [MASK for _item in child] if isinstance(child, list) else MASK
        elif isinstance(child, dict) and not key.startswith("ce_"):
            out[key] = _masked(child, key, everything or (is_secret_name(key) and "ce_value" not in child), found)
        else:
            out[key] = child
    return out


def _mask(data: PolicyData, opaque: bool) -> t.Tuple[t.Dict[str, t.Dict[str, t.Any]], t.Set[str]]:
    found: t.Set[str] = set()
    hidden = data.opaque_sections()
    masked = {name: _masked(tree, name, opaque or name in hidden, found) for name, tree in data.sections().items()}
    return masked, found


def masked_sections(data: PolicyData, opaque: bool = False) -> t.Dict[str, t.Dict[str, t.Any]]:
    """A copy of the sections with every secret leaf's value shown as ``MASK`` (``opaque``: every leaf)."""
    return _mask(data, opaque)[0]


def secret_values(data: PolicyData) -> t.Set[str]:
    """The values :func:`masked_sections` hides, here and in the policies nested inside, for redacting text."""
    found = _mask(data, False)[1]
    for inner in data.nested():
        found |= _mask(inner, True)[1]
    return found
