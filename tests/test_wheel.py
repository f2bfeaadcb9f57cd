"""The wheel built from the repository, installed without -e into a fresh virtual environment,
runs `aggregator demo` there to a complete site from the installed package's own files.

Offline throughout: the wheel is built with the dev extra's hatchling (--no-build-isolation),
installed with --no-deps --no-index, and the third-party dependencies come from this (the dev)
environment through a .pth file in the fresh one. A path that a .pth file adds is not a site
directory, so the .pth files inside it are not processed: the dev environment's editable install
of aggregator (a .pth naming the repository) does not reach the fresh one, which the test checks.
"""

from __future__ import annotations

import json
import os
import re
import site
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
TIMEOUT = 300  # seconds for any one step; the demo takes about 6 s


def _run(*argv: str | Path, cwd: Path | None = None) -> str:
    # No AGGREGATOR_*/OPENAI_* variables (conftest sets some) and no PYTHONPATH: the installed
    # command runs as it would in a user's shell.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AGGREGATOR_", "OPENAI_")) and k not in {"PYTHONPATH", "PYTHONHOME"}
    }
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run(*PIP, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", out, ROOT)
    (built,) = out.glob("aggregator-*.whl")
    return built


def test_the_wheel_carries_templates_prompts_and_the_command(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"aggregator/templates/{p.name}" for p in (ROOT / "templates").iterdir()}
    expected |= {f"aggregator/prompts/{p.name}" for p in (ROOT / "prompts").iterdir()}
    expected |= {"aggregator/py.typed", "aggregator/resources.py", "aggregator/cli/main.py"}
    migrations = ROOT / "aggregator" / "store" / "migrations"
    expected |= {
        p.relative_to(ROOT).as_posix()
        for p in migrations.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert "aggregator/store/migrations/versions/0001_baseline.py" in expected
    assert expected <= names, sorted(expected - names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n.split("/")[0] in {"templates", "prompts", "tests"}]
    meta = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "aggregator = aggregator.cli.main:main" in zipfile.ZipFile(wheel).read(meta).decode()


def test_the_wheel_ships_every_demo_file(wheel: Path) -> None:
    """An installed package (not just this checkout) must carry all the demo content."""
    names = set(zipfile.ZipFile(wheel).namelist())
    data = ROOT / "aggregator" / "demo" / "data"
    content = {p.relative_to(ROOT).as_posix() for p in data.rglob("*") if p.is_file()}
    assert any(n.startswith("aggregator/demo/data/outlets/") for n in content)
    assert not content - names, sorted(content - names)


def test_the_installed_wheel_runs_the_demo_from_its_own_files(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    # No pip in the fresh environment: this environment's pip installs into it (--python),
    # which is quicker than bootstrapping one and needs no network either.
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    _run(*PIP, "--python", python, "install", "--no-deps", "--no-index", wheel)
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    fresh_site = Path(_run(python, "-c", purelib).strip())
    dev_sites = site.getsitepackages()
    (fresh_site / "dev-dependencies.pth").write_text("\n".join(dev_sites) + "\n")

    elsewhere = tmp_path / "elsewhere"  # outside the repository: no checkout on the path
    elsewhere.mkdir()
    probe = (
        "import json, sys, aggregator\n"
        "from aggregator.render.pages import TEMPLATES_DIR as t\n"
        "from aggregator.summarise.prompt import PROMPTS_DIR as p\n"
        "print(json.dumps([aggregator.__file__, str(t), str(p), sys.path]))"
    )
    package, templates, prompts, path = json.loads(_run(python, "-c", probe, cwd=elsewhere))
    installed = fresh_site / "aggregator"
    assert Path(package) == installed / "__init__.py"
    assert Path(templates) == installed / "templates"
    assert Path(prompts) == installed / "prompts"
    editable = [p for d in dev_sites for p in Path(d).glob("*.pth") if str(ROOT) in p.read_text()]
    if editable:  # the dev environment's editable install names the repository; not seen here
        assert str(ROOT) not in path

    # A mark in the installed stylesheet must reach the site: the wheel's templates rendered it.
    style = installed / "templates" / "style.css"
    style.write_text(style.read_text() + "/* installed copy */\n")
    out = tmp_path / "site"
    printed = _run(venv / "bin" / "aggregator", "demo", "--out", out, cwd=elsewhere)
    assert f"The demo site is at {out / 'index.html'}" in printed

    # the installed package migrates a database from its own migration scripts
    db = f"sqlite:///{tmp_path / 'wheel.db'}"
    _run(venv / "bin" / "aggregator", "db", "upgrade", "--db", db, cwd=elsewhere)
    assert "(the newest schema)" in _run(venv / "bin" / "aggregator", "db", "current", "--db", db,
                                         cwd=elsewhere)  # fmt: skip

    for name in ("index.html", "feed.xml", "atom.xml", "feed.json", "style.css"):
        assert (out / name).stat().st_size > 0, name
    assert "/* installed copy */" in (out / "style.css").read_text()
    stories = sorted(p.name for p in (out / "stories").glob("*.html"))
    feed = json.loads((out / "feed.json").read_text())
    assert len(stories) >= 5 and len(feed["items"]) == len(stories)
    index = (out / "index.html").read_text()
    assert all(f"stories/{name}" in index for name in stories)
    assert re.search(r"<(rss|channel)\b", (out / "feed.xml").read_text())
    assert "<feed" in (out / "atom.xml").read_text()


def test_the_lock_pins_every_declared_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared += extra
    pinned = {
        _normalise(m.group(1))
        for m in re.finditer(r"^([A-Za-z0-9._-]+)==", (ROOT / "constraints.txt").read_text(), re.M)
    }
    names = {_normalise(re.split(r"[\[<>=!~;\s]", d, maxsplit=1)[0]) for d in declared}
    assert names <= pinned, f"not in constraints.txt (run `make lock`): {sorted(names - pinned)}"


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
