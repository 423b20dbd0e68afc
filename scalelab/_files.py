"""Files written whole or not at all, by any number of processes at once.

Every file scalelab writes for a user (a report, an export, a W&B sweep config) is
written to a temporary file in the same folder and renamed over the target
(``os.replace``, atomic on POSIX and Windows), so a reader never sees half a file. The
temporary name is unique per process and per call (``.<name>.<pid>.<random>.tmp``): two
processes writing the same report each write their own temporary file and the last
rename wins, instead of both writing one ``report.pdf.tmp``. A failure removes the
temporary file, so nothing is left behind. :func:`writable_folder` says, before any
work, whether a file can be created where the user asked, in one sentence. This
module imports nothing but the standard library.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path
from typing import Iterator

from scalelab._errors import ScalelabError

__all__ = ["temporary_path", "atomic_path", "atomic_write_text", "writable_folder"]

#: The longest file or folder name, in bytes, most file systems take (ext4, APFS, NTFS).
NAME_MAX = 255


def temporary_path(path: str | os.PathLike) -> Path:
    """A temporary name beside ``path``, unique to this process and call; same suffix,
    so writers that pick a format by suffix (matplotlib, pandas) still do."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
                          f"{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """``with atomic_path(p) as tmp: write(tmp)``: ``tmp`` replaces ``p`` when the block
    ends without error; on error it is removed and ``p`` is left as it was."""
    path = Path(path)
    tmp = temporary_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_text(path: str | os.PathLike, text: str, what: str = "file") -> Path:
    """Write ``text`` to ``path`` atomically; an unwritable place is one ScalelabError."""
    path = Path(path)
    writable_folder(path, what)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def check_name_lengths(path: str | os.PathLike, given: str = "") -> None:
    """One sentence when a file or folder name in ``path`` is longer than a file system
    takes (``NAME_MAX`` bytes), instead of ENAMETOOLONG after folders were made."""
    parts = Path(path).parts
    longest = max((len(os.fsencode(part)) for part in parts), default=0)
    if longest > NAME_MAX:
        part = max(parts, key=lambda p: len(os.fsencode(p)))
        shown = str(path) if len(str(path)) <= 60 else str(path)[:57] + "..."
        raise ScalelabError(f"{shown}{given}: the name {part[:24]!r}... is "
                            f"{longest} bytes long, more than a file name may be ({NAME_MAX}); "
                            f"give a shorter name.")


def writable_folder(path: str | os.PathLike, what: str = "file", option: str = "") -> None:
    """Raise one sentence unless a file ``path`` can be created (its folder made if need
    be) and written; leaves nothing behind. ``option`` names where the path came from."""
    text = os.fspath(path)
    path = Path(path)
    given = f" ({option})" if option else ""
    check_name_lengths(path, given)  # before any stat: a name too long raises ENAMETOOLONG
    if path.is_dir():
        raise ScalelabError(f"{path}{given}: is a folder, not a {what}; give a file path.")
    if text.endswith(("/", os.sep)):  # Path("dir/") drops the slash: a file "dir" would be made
        raise ScalelabError(f"{text}{given}: ends in a slash, so it names a folder, not a "
                            f"{what}; give a file path inside it.")
    if path.exists() and not path.is_file():  # opening a FIFO would block; /dev/null is no file
        raise ScalelabError(f"{path}{given}: is a special file (a pipe, a device or a socket), "
                            f"not a regular file, so the {what} cannot be written there; give "
                            f"a file path.")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ScalelabError(f"{path}{given}: {ancestor} is a file, so no folder can be made "
                            f"there for the {what}; give another path.")
    try:
        fd, probe = tempfile.mkstemp(prefix=".scalelab-probe-", dir=ancestor)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ScalelabError(f"{path}{given}: no file can be created in {ancestor} "
                            f"({reason.lower()}), so the {what} cannot be written there; "
                            f"give a path in a writable folder.") from None
    if path.exists():
        try:
            with open(path, "r+b"):
                pass
        except OSError as err:
            raise ScalelabError(f"{path}{given}: the {what} is read-only "
                                f"({(err.strerror or 'permission denied').lower()}); make it "
                                f"writable or give another path.") from None
