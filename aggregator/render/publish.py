"""Publishing: write the site beside the live one, then swap it in."""

from __future__ import annotations

import glob
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

log = logging.getLogger(__name__)

STALE_SECONDS = 3600  # leftovers of a crashed publish older than this are removed


# ---------------------------------------------------------------------------------------------
# Publishing.


def _relative(name: str) -> PurePosixPath:
    """A validated relative path inside the site; anything that could escape it is refused."""
    path = PurePosixPath(name)
    bad = (
        not name
        or "\\" in name
        or "\x00" in name
        or path.is_absolute()
        or any(part in {"", ".", ".."} for part in name.split("/"))
    )
    if bad:
        raise ValueError(f"refusing to publish {name!r}: not a plain path inside the site")
    return path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_tree(files: Mapping[str, bytes], root: Path) -> None:
    """Write every file under root, each fsynced, then fsync the directories."""
    dirs = {root}
    for name, data in files.items():
        target = root.joinpath(*_relative(name).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        dirs.add(target.parent)
        with open(target, "xb") as handle:  # "x": two names for one file is an error
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    for directory in sorted(dirs, key=lambda d: len(d.parts), reverse=True):
        _fsync_dir(directory)


def _remove_stale(parent: Path, name: str) -> None:
    """Remove what a killed publish left behind (older than an hour, so never a live one)."""
    cutoff = time.time() - STALE_SECONDS
    for pattern in (f".{glob.escape(name)}.new-*", f".{glob.escape(name)}.old-*"):
        for leftover in parent.glob(pattern):
            try:
                stale = leftover.stat(follow_symlinks=False).st_mtime < cutoff
                if stale and leftover.is_dir() and not leftover.is_symlink():
                    shutil.rmtree(leftover)
            except OSError as exc:
                log.warning("could not remove leftover %s: %s", leftover, exc)


def publish(files: Mapping[str, bytes], out_dir: Path) -> Path:
    """Write files into a fresh directory beside out_dir, then swap it in; return out_dir.

    On any error the previous site stays live and the half-built directory is removed. Between
    the two renames of the swap out_dir is briefly absent; it is never half-written.
    """
    target = Path(out_dir).resolve()  # through symlinks, so the renames stay on one filesystem
    if not target.name:
        raise ValueError(f"refusing to publish into {out_dir}: not a directory name")
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"cannot publish into {target}: it exists and is not a directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(target.parent, target.name)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it 0700; a web server must be able to read the site
        _write_tree(files, staging)
        _swap(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _swap(staging: Path, target: Path) -> None:
    """Put staging where target is: old aside, new in place, old removed."""
    if not target.exists():
        os.rename(staging, target)
        _fsync_dir(target.parent)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rename(target, old / "site")
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(old / "site", target)  # put the previous site back before reporting
        old.rmdir()
        raise
    _fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)
    if old.exists():
        log.warning("published %s but could not remove the previous site at %s", target, old)
