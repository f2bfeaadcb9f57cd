"""Publishing: the site is a symlink to a release directory, swapped in one atomic rename.

    site -> .site.releases/r-20261202T193000-x1y2z3   (what the web server serves)
    .site.releases/r-20261202T180000-a1b2c3           (the previous release, kept for readers
                                                        still on it; older ones are removed)

Each publish writes a complete new release, points a new symlink at it and renames that over
``site``: a reader, or a crash at any moment, sees the old site or the new one, never none and
never half of one. Releases a killed publish left behind are removed by the next publish, which
holds a lock on the release directory so two publishes never race.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from aggregator.errors import SiteWriteError

log = logging.getLogger(__name__)


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


def _sync_added(root: Path, files: Mapping[str, bytes]) -> None:
    """fsync what a ``prepare`` step wrote beside ``files`` (the search index), as _write_tree
    does for the files themselves, so a crash after the swap never leaves half of it."""
    dirs = {root}
    for path in root.rglob("*"):
        if path.is_file() and path.relative_to(root).as_posix() not in files:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            dirs.add(path.parent)
    for directory in sorted(dirs, key=lambda d: len(d.parts), reverse=True):
        _fsync_dir(directory)


def publish(
    files: Mapping[str, bytes],
    out_dir: Path,
    *,
    prepare: Callable[[Path], object] | None = None,
) -> Path:
    """Write ``files`` as a new release and swap ``out_dir`` over to it; return ``out_dir``.

    ``prepare`` runs on the written release before the swap (the search index is built there),
    so the site goes live with what it adds or not at all. On any error the previous site stays
    live and the half-built release is removed. A real directory at ``out_dir`` (a site
    published before releases) becomes the previous release.
    """
    target = _target(Path(out_dir))
    releases = target.parent / f".{target.name}.releases"
    releases.mkdir(parents=True, exist_ok=True)
    with _locked(releases):
        live = _current(target, releases)
        _clean(target, releases, keep={live})  # what killed publishes left, older releases
        release = _new_release(releases)
        try:
            _write_tree(files, release)
            if prepare is not None:
                prepare(release)
                _sync_added(release, files)
            previous = _swap(target, releases, release) or live
        except OSError as exc:
            shutil.rmtree(release, ignore_errors=True)
            raise SiteWriteError(
                f"cannot publish the site to {target}: {exc.strerror or exc}; the previous "
                "site stays live and the unfinished release was removed"
            ) from exc
        except BaseException:
            shutil.rmtree(release, ignore_errors=True)
            raise
        _clean(target, releases, keep={release, previous})  # the previous stays for its readers
    return target


def _target(out_dir: Path) -> Path:
    """The path to swap: ``out_dir`` itself (its folder resolved), or, where ``out_dir`` is an
    editor's own symlink to a directory elsewhere, that directory."""
    target = out_dir.absolute().parent.resolve() / out_dir.name
    if not out_dir.name or out_dir.name in {".", ".."}:
        raise ValueError(f"refusing to publish into {out_dir}: not a directory name")
    folder = target.parent.name
    if folder.startswith(".") and folder.endswith(".releases") and len(folder) > len("..releases"):
        # a release itself (a path resolved through the site's link): publish to that link,
        # not into the release, which would nest a new set of releases inside the old one
        target = target.parent.parent / folder[1 : -len(".releases")]
    if target.is_symlink() and target.resolve().parent.name != f".{target.name}.releases":
        target = target.resolve()  # someone else's link: publish where it points
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"cannot publish into {target}: it exists and is not a directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


@contextmanager
def _locked(releases: Path) -> Iterator[None]:
    """One publish at a time per site; a killed publisher's lock goes with its process."""
    fd = os.open(releases, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _new_release(releases: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    release = releases / f"r-{stamp}-{secrets.token_hex(3)}"
    release.mkdir(mode=0o755)
    release.chmod(0o755)  # whatever the umask: a web server must be able to read the site
    return release


def _current(target: Path, releases: Path) -> Path | None:
    """The release ``target`` points at, if it is a link into ``releases``."""
    if not target.is_symlink():
        return None
    pointed = (target.parent / os.readlink(target)).resolve()
    return pointed if pointed.parent == releases.resolve() else None


def _swap(target: Path, releases: Path, release: Path) -> Path | None:
    """Point ``target`` at ``release`` with one rename of a fresh symlink over it; return where
    a site from before releases went (it becomes the previous release), if there was one."""
    link = target.parent / f".{target.name}.link-{secrets.token_hex(4)}"
    os.symlink(os.path.relpath(release, target.parent), link)
    moved = None
    try:
        if target.is_dir() and not target.is_symlink():
            # Only this one publish, the first after an upgrade, has a moment without the
            # site: between these two renames.
            moved = releases / f"r-00000000T000000-{secrets.token_hex(3)}"
            os.rename(target, moved)
        os.replace(link, target)
    except BaseException:
        link.unlink(missing_ok=True)
        if moved is not None and not target.exists():
            os.rename(moved, target)  # put the old site back before reporting
        raise
    _fsync_dir(target.parent)
    return moved


def _clean(target: Path, releases: Path, keep: set[Path | None]) -> None:
    """Remove the releases not in ``keep`` and what a killed publish left beside the site
    (a temporary link, the staging folders of the releases before this layout)."""
    doomed = [p for p in releases.iterdir() if p not in keep]
    leftovers = [*target.parent.glob(f".{target.name}.link-*")]
    leftovers += [*target.parent.glob(f".{target.name}.new-*")]  # from releases of old
    leftovers += [*target.parent.glob(f".{target.name}.old-*")]
    for path in [*doomed, *leftovers]:
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError as exc:
            log.warning("could not remove leftover %s: %s", path, exc)
