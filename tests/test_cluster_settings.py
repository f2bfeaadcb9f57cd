"""The pipeline clusters with the embedder settings name: one story per event across languages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aggregator.cli.main import main
from aggregator.cluster.embed import use_available

FIXTURE = Path(__file__).parent / "fixtures" / "cluster" / "multilingual.json"


def _stories(tmp_path: Path, embedder: str, capsys: pytest.CaptureFixture[str]) -> list[set[str]]:
    rows = json.loads(FIXTURE.read_text())["articles"]
    src = tmp_path / f"{embedder}.jsonl"
    src.write_text("".join(json.dumps({k: r[k] for k in ("url", "title", "text", "source",
                   "published", "language")}) + "\n" for r in rows))  # fmt: skip
    cfg = tmp_path / f"{embedder}.yaml"
    cfg.write_text(f"settings:\n  cluster_embedder: {embedder}\nsources: []\n")
    common = ["--config", str(cfg), "--db", f"sqlite:///{tmp_path / embedder}.db"]
    assert main(["ingest", str(src), *common]) == 0
    assert main(["cluster", "--window", "all", *common]) == 0
    capsys.readouterr()
    assert main(["export", "stories", "--window", "all", *common]) == 0
    story_of = {r["url"]: r["story"] for r in rows}
    exported = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    return [{story_of[a["url"]] for a in s["articles"]} for s in exported]


@pytest.mark.skipif(not use_available(), reason="needs the embeddings extra")
def test_embeddings_setting_groups_events_across_languages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = _stories(tmp_path, "use", capsys)
    assert all(len(e) == 1 for e in events), "no story mixes two events"
    assert len(events) == 5  # one story per event, whatever the languages
    # TF-IDF alone cannot see that a German and a Spanish report tell one event (it splits
    # them, or merges the two events from one country): the setting is what makes the difference
    tfidf = _stories(tmp_path, "none", capsys)
    assert not (all(len(e) == 1 for e in tfidf) and len(tfidf) == 5)
