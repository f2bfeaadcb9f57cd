"""A full disk while the site is written: the previous site stays live, the half-written release
is removed, the command exits 74 with a message that says why, and the next run, with space
again, publishes. A real full file system: a 2 MB tmpfs mounted in a mount namespace of the
test's own (``unshare``), so no privilege is needed and nothing outside the test sees it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[1]

# Runs inside the namespace, where the tmpfs is mounted at argv[1]; prints what it saw as JSON.
CHILD = """
import json, os, subprocess, sys
from pathlib import Path
disk, db = Path(sys.argv[1]), sys.argv[2]
site, releases = disk / "site", disk / ".site.releases"
def demo():
    done = subprocess.run(
        [sys.executable, "-m", "aggregator", "demo", "--out", str(site), "--db", db],
        capture_output=True, text=True,
    )
    return {"code": done.returncode, "stderr": done.stderr[-2000:]}
def snapshot():
    return {str(p.relative_to(site)): p.read_text(errors="replace")
            for p in site.rglob("*") if p.is_file()}
report = {"first": demo()}
report["before"] = snapshot()
with open(disk / "filler", "wb") as filler:  # every byte that is left
    try:
        while True:
            filler.write(b"\\0" * 65536)
            filler.flush()
    except OSError as exc:
        report["filled"] = exc.strerror
report["full"] = demo()
report["after"] = snapshot()
report["releases"] = sorted(p.name for p in releases.iterdir())
report["live"] = os.readlink(site)
(disk / "filler").unlink()
report["again"] = demo()
report["final"] = snapshot()
print(json.dumps(report))
"""


def namespace_problem() -> str | None:
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(["unshare", "-Urm", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot make a mount namespace: {probe.stderr.strip()}"
    return None


def test_a_full_disk_while_rendering_keeps_the_previous_site(tmp_path: Path) -> None:
    problem = namespace_problem()
    if problem:
        if IN_CI:
            pytest.fail(problem)
        pytest.skip(problem)
    disk = tmp_path / "disk"
    disk.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    env["PYTHONPATH"] = str(ROOT)
    script = f'mount -t tmpfs -o size=2m tmpfs {disk} && exec {sys.executable} -c "$0" "$@"'
    done = subprocess.run(
        [
            "unshare",
            "-Urm",
            "sh",
            "-c",
            script,
            textwrap.dedent(CHILD),
            str(disk),
            f"sqlite:///{tmp_path / 'news.db'}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["first"]["code"] == 0, report["first"]["stderr"]
    assert "index.html" in report["before"]
    assert report["filled"] == "No space left on device"
    full = report["full"]
    assert full["code"] == 74, full["stderr"]
    assert "No space left on device; the previous site stays live" in full["stderr"]
    assert "Traceback" not in full["stderr"]
    assert report["after"] == report["before"]  # the same site, whole
    # only the live release is left: the unfinished one was removed
    assert report["releases"] == [Path(report["live"]).name]
    assert report["again"]["code"] == 0, report["again"]["stderr"]
    assert "index.html" in report["final"]  # published again, once there was room
