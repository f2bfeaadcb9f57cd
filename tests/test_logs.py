"""Logs: readable lines by default; with --log-format json one JSON object per stderr line,
naming the source or story it concerns. Real processes, so the real logging setup is seen."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.loopback import LoopbackServer, Response
from tests.support.processes import aggregator, feed_xml, write_config


def _lines(stderr: str) -> list[dict[str, object]]:
    """Every stderr line as a JSON object (fails on a line that is not one)."""
    return [json.loads(line) for line in stderr.splitlines() if line.strip()]


def test_json_lines_name_the_source_and_the_story(tmp_path: Path) -> None:
    with LoopbackServer() as srv:
        srv.routes["/wire.xml"] = Response(body=feed_xml("wire", srv.url("/")))
        srv.routes["/post.xml"] = Response(body=feed_xml("post", srv.url("/")))
        cfg = write_config(
            tmp_path / "sources.yaml",
            {"wire": srv.url("/wire.xml"), "post": srv.url("/post.xml"), "gone": srv.url("/x")},
            # an LLM nobody answers for: each story falls back to the extractive summary and
            # says so in a warning about that story
            "min_sources: 1\nllm:\n  base_url: http://127.0.0.1:9/v1\n  max_retries: 0",
        )
        run = aggregator(["--log-format", "json", "run", "--config", str(cfg)], tmp_path)
        assert run.wait() == 0, run.stderr
        # -v adds the info lines, each source's own; the option also goes after the command
        again = aggregator(
            ["crawl", "--force", "-v", "--log-format", "json", "--config", str(cfg)], tmp_path
        )
        assert again.wait() == 0, again.stderr
        sources = {x.get("source_id") for x in _lines(again.stderr) if x["level"] == "info"}
        assert {"wire", "post"} <= sources
        # the daemon's job lines carry the job and its counts
        daemon = aggregator(
            ["--log-format", "json", "schedule", "--once", "--config", str(cfg)], tmp_path
        )
        assert daemon.wait() == 0, daemon.stderr
        [digest] = [x for x in _lines(daemon.stderr) if x.get("job") == "digest"]
        assert digest["articles"] == 4 and digest["stories_rendered"] >= 1  # min_sources 1
    lines = _lines(run.stderr)  # nothing but JSON: the crawl's problem lines are log lines here
    failed = [x for x in lines if x.get("source_id") == "gone"]
    assert len(failed) == 1 and failed[0]["level"] == "warning"
    assert failed[0]["url"] == srv.url("/x") and "404" in str(failed[0]["message"])
    assert failed[0]["logger"] == "aggregator.crawl" and str(failed[0]["time"]).endswith("Z")
    fallbacks = [x for x in lines if "story_id" in x]
    assert fallbacks and all("LLM fallback" in str(x["message"]) for x in fallbacks)
    assert all(str(x["story_id"]) in str(x["message"]) for x in fallbacks)


def test_text_is_the_default_and_errors_are_json_lines_too(tmp_path: Path) -> None:
    with LoopbackServer() as srv:
        cfg = write_config(tmp_path / "sources.yaml", {"gone": srv.url("/x")})
        text = aggregator(["crawl", "--config", str(cfg)], tmp_path)
        assert text.wait() == 1  # every source failed
    assert text.stderr.splitlines()[0].startswith("  gone: HTTP 404")  # the crawl's own line
    assert "{" not in text.stderr
    missing = aggregator(["--log-format", "json", "run", "--config", "nope.yaml"], tmp_path)
    assert missing.wait() == 2
    [line] = _lines(missing.stderr)
    assert line["level"] == "error" and "nope.yaml" in str(line["message"])
    # the environment sets it for a whole deployment (systemd, Docker)
    env = aggregator(
        ["run", "--config", "nope.yaml"], tmp_path, env={"AGGREGATOR_LOG_FORMAT": "json"}
    )
    assert env.wait() == 2
    assert _lines(env.stderr)[0]["level"] == "error"
