"""Shipped templates and prompts are found from a checkout; an editor's template folder
(settings.templates_dir) replaces the templates it holds and must exist."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.cli.main import main
from aggregator.errors import UserError
from aggregator.render.pages import build_site
from aggregator.resources import shipped_dir, template_dirs
from aggregator.settings import Settings

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]

# Extends the shipped base.html: an editor's folder needs only the templates it changes.
EDITOR_INDEX = """{% extends "base.html" %}
{% block main %}<h1 class="editor">The editor's own front page</h1>{% endblock %}
"""


def _editor_folder(parent: Path) -> Path:
    folder = parent / "my-templates"
    folder.mkdir()
    (folder / "index.html").write_text(EDITOR_INDEX, encoding="utf-8")
    (folder / "style.css").write_text("body { color: teal } /* editor */\n", encoding="utf-8")
    return folder


def _config(tmp_path: Path, templates_dir: str) -> Path:
    cfg = tmp_path / "sources.yaml"
    cfg.write_text(
        f"settings:\n  title: Test digest\n  output_dir: site\n  data_dir: data\n"
        f"  templates_dir: {templates_dir}\nsources: []\n",
        encoding="utf-8",
    )
    return cfg


def test_a_checkout_finds_the_top_level_folders() -> None:
    # tests run from a checkout (editable install): the package holds no copy, the repo does
    assert shipped_dir("templates") == ROOT / "templates"
    assert shipped_dir("prompts") == ROOT / "prompts"
    assert template_dirs() == (ROOT / "templates",)


def test_editor_templates_replace_the_shipped_ones_they_name(tmp_path: Path) -> None:
    files = build_site([], {}, {}, Settings(), NOW, templates_dir=_editor_folder(tmp_path))
    index = files["index.html"].decode()
    assert "The editor's own front page" in index
    assert "Top stories of the last" not in index  # the shipped index.html is not used
    assert '<link rel="stylesheet"' in index  # the shipped base.html it extends is
    assert files["style.css"] == b"body { color: teal } /* editor */\n"
    shipped = build_site([], {}, {}, Settings(), NOW)
    assert files["feed.xml"] == shipped["feed.xml"]  # not in the editor's folder: shipped


@pytest.mark.parametrize("command", [["render"], ["run", "--no-crawl"]])
def test_templates_dir_is_relative_to_the_sources_file(
    tmp_path: Path, db_url: str, command: list[str]
) -> None:
    _editor_folder(tmp_path)
    cfg = _config(tmp_path, "my-templates")
    db = db_url
    assert main([*command, "--config", str(cfg), "--db", db]) == 0
    assert "The editor's own front page" in (tmp_path / "site" / "index.html").read_text()
    assert "/* editor */" in (tmp_path / "site" / "style.css").read_text()


def test_a_missing_template_folder_is_a_user_error_naming_it(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-folder"
    with pytest.raises(UserError, match=re.escape(f"templates_dir: {missing} is not a folder")):
        build_site([], {}, {}, Settings(), NOW, templates_dir=missing)

    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("the previous site", encoding="utf-8")
    cfg = _config(tmp_path, "no-such-folder")
    db = db_url
    assert main(["render", "--config", str(cfg), "--db", db]) == 2
    assert str(missing) in capsys.readouterr().err
    assert (site / "index.html").read_text() == "the previous site"  # nothing published
