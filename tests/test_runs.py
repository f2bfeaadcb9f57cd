"""Every run leaves a record in the database (when, how it went, each job's times and counts,
its error), which `aggregator status` shows beside the sources' health."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aggregator.cli.main import main

ROWS = [
    {"url": f"https://wire.example/{i}", "title": f"Harbour bridge reopens after repairs {i}",
     "source": f"Outlet {i % 2}", "published": "2026-11-25T20:00:00Z",
     "text": "The harbour bridge reopened on Tuesday after two years of repairs."}
    for i in range(4)
]  # fmt: skip


def _setup(tmp_path: Path, db_url: str, **settings: str) -> list[str]:
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    extra = "".join(f"  {k}: {v}\n" for k, v in settings.items())
    config = tmp_path / "sources.yaml"
    config.write_text(
        f"settings:\n  data_dir: {tmp_path / 'data'}\n  output_dir: {tmp_path / 'site'}\n"
        f"{extra}sources: []\n"
    )
    common = ["--config", str(config), "--db", db_url]
    assert main(["ingest", str(src), *common]) == 0
    return common


def test_runs_are_recorded_and_shown_newest_first(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = _setup(tmp_path, db_url)
    now = ["--now", "2026-11-26T00:00:00Z"]
    assert main(["run", "--no-crawl", *common, *now]) == 0
    assert main(["run", "--no-crawl", *common, "--now", "2026-11-26T01:00:00Z"]) == 0
    capsys.readouterr()
    assert main(["status", "--json", *common]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert len(runs) == 2
    assert runs[0]["started"] >= runs[1]["started"]  # newest first
    for run in runs:
        assert run["outcome"] == "ok"
        [digest] = run["jobs"]
        assert digest["job"] == "digest" and digest["outcome"] == "ok" and digest["error"] is None
        assert digest["seconds"] >= 0
    assert runs[1]["jobs"][0]["counts"]["stories"] >= 1
    assert main(["status", *common]) == 0
    out = capsys.readouterr().out
    assert "last runs" in out and "digest ok" in out


def test_a_failed_run_is_recorded_with_its_error(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "templates"
    broken.mkdir()
    (broken / "index.html").write_text("{% for %}")  # a template that cannot compile
    db_url = db_url
    common = _setup(tmp_path, db_url, templates_dir=str(broken))
    assert main(["run", "--no-crawl", *common, "--now", "2026-11-26T00:00:00Z"]) != 0
    capsys.readouterr()
    assert main(["status", "--json", *common]) == 0
    [run] = json.loads(capsys.readouterr().out)["runs"]
    assert run["outcome"] == "failed"
    assert run["jobs"][0]["outcome"] == "failed" and run["jobs"][0]["error"]


def test_no_run_yet_says_so(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    common = _setup(tmp_path, db_url)
    assert main(["status", *common]) == 0
    assert "no run recorded yet" in capsys.readouterr().out
