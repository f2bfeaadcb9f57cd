"""kill -9 at every step of a publish: the site is always the old one or the new one, complete,
and the next publish cleans up what the killed one left."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aggregator.render.publish import publish

OLD = {"index.html": b"old", "stories/a.html": b"old story"}
NEW = {f"stories/{n}.html": b"new story %d" % n for n in range(40)} | {"index.html": b"new"}

# Where the child kills itself: the function it patches and whether it dies before or after the
# real call. Together they cover every step: writing the release, making the link, the rename,
# and the clean-up after it.
STEPS = {
    "while writing the release": ("os.fsync", "before", 10),
    "after the release is complete": ("os.symlink", "before", 1),
    "after the new link is made": ("os.replace", "before", 1),
    "right after the swap": ("os.replace", "after", 1),
    "while removing old releases": ("shutil.rmtree", "before", 1),
}

CHILD = """
import os, shutil, signal, sys
from pathlib import Path
from aggregator.render import publish as module
name, when, nth = sys.argv[2], sys.argv[3], int(sys.argv[4])
owner, attr = name.split(".")
target = {"os": os, "shutil": shutil}[owner]
real = getattr(target, attr)
calls = [0]
def dying(*args, **kwargs):
    calls[0] += 1
    if calls[0] == nth and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    result = real(*args, **kwargs)
    if calls[0] == nth and when == "after":
        os.kill(os.getpid(), signal.SIGKILL)
    return result
setattr(target, attr, dying)
new = {f"stories/{n}.html": b"new story %d" % n for n in range(40)} | {"index.html": b"new"}
module.publish(new, Path(sys.argv[1]))
"""


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("step", list(STEPS))
def test_a_killed_publish_leaves_a_whole_site(tmp_path: Path, step: str) -> None:
    site = tmp_path / "site"
    publish(OLD, site)
    publish(OLD, site)  # a previous release exists too, so the clean-up has work to do
    function, when, nth = STEPS[step]
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHILD), str(site), function, when, str(nth)],
        capture_output=True,
        timeout=60,
    )
    assert child.returncode == -9, child.stderr.decode()  # it really died at that step
    assert snapshot(site) in (OLD, NEW)
    publish(NEW, site)
    assert snapshot(site) == NEW
    assert sorted(p.name for p in tmp_path.iterdir()) == [".site.releases", "site"]
    assert len(list((tmp_path / ".site.releases").iterdir())) == 2
