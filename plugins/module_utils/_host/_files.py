# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The one file reader and the one atomic file writer. A rewrite keeps the mode, owner and group of the file it
# replaces (Debian ships /etc/nftables.conf 0755; a proxy's configuration may belong to its own group); only a file
# the write creates gets the mode (and owner) it is given. Text is UTF-8; bytes that are not survive a read and
# rewrite unchanged (surrogateescape).
from __future__ import annotations

import os
import stat
import tempfile
import typing as t
from dataclasses import dataclass

OWN_DIR = "/etc/protectnet_epns"


@dataclass(frozen=True)
class FileMeta:
    """The mode and owner of a file as found: a rewrite keeps them, putting a removed file back restores them.
    uid/gid -1: the writer's own."""

    mode: int
    uid: int = -1
    gid: int = -1

    @classmethod
    def of(cls, path: str) -> t.Optional[FileMeta]:
        try:
            found = os.stat(path)
        except FileNotFoundError:
            return None
        return cls(stat.S_IMODE(found.st_mode), found.st_uid, found.st_gid)


def read_text(path: str) -> t.Optional[str]:
    """The file's text, or None when it does not exist (any other failure raises OSError)."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_file(path: str, content: t.Optional[str], create_as: t.Optional[FileMeta] = None) -> None:
    """Atomically replace path with content (a temporary file in the same directory, then a rename), or remove it
    (content None; the collection's own directories under OWN_DIR go once empty). A file that exists keeps its
    mode, owner and group; a new one gets create_as (default: 0644, the writer's owner)."""
    if content is None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        _prune(os.path.dirname(path))
        return
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    meta = FileMeta.of(path) or create_as or FileMeta(0o644)
    fd, tmp = tempfile.mkstemp(prefix=".pn-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())  # the rename must not reach the disk before the content does
        os.chmod(tmp, meta.mode)
        _chown_if_other(tmp, meta)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _chown_if_other(path: str, meta: FileMeta) -> None:
    """chown only where the owner differs (so a run without root that writes its own files still works)."""
    found = os.stat(path)
    uid = -1 if meta.uid in (-1, found.st_uid) else meta.uid
    gid = -1 if meta.gid in (-1, found.st_gid) else meta.gid
    if uid != -1 or gid != -1:
        os.chown(path, uid, gid)


def _prune(directory: str) -> None:
    """Remove our own directories once they are empty (state=absent leaves /etc as it was)."""
    while directory.startswith(OWN_DIR):
        try:
            os.rmdir(directory)
        except OSError:
            return
        directory = os.path.dirname(directory)


@dataclass
class FileChange:
    """The full new content of a file (None: remove it). before is the content found (None: absent), found its mode
    and owner; mode is the mode of a file this change creates."""

    path: str
    content: t.Optional[str]
    before: t.Optional[str] = None
    mode: int = 0o644
    found: t.Optional[FileMeta] = None

    @property
    def changed(self) -> bool:
        return self.content != self.before

    def as_dict(self) -> t.Dict[str, t.Any]:
        """The change as plain data (the rollback's plan.json; FileChange.from_dict reads it back)."""
        return {"path": self.path, "content": self.content, "mode": self.mode}

    @classmethod
    def from_dict(cls, data: t.Mapping[str, t.Any]) -> FileChange:
        return cls(str(data["path"]), data["content"], mode=int(data.get("mode", 0o644)))

    def write(self) -> None:
        write_file(self.path, self.content, FileMeta(self.mode))

    def restore(self) -> None:
        """Put the file back as it was found: content, mode and owner (a file this change created goes)."""
        write_file(self.path, self.before, self.found or FileMeta(self.mode))
