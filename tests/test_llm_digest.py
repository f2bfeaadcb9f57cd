"""The demo digest with an LLM: against the loopback stub in German (the demo's outlets write in
English, German, Spanish and French), and, opt-in, against a real model."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from aggregator.demo.content import load_demo_content
from aggregator.demo.server import DemoServer, demo_config_text
from aggregator.pipeline import run_once
from aggregator.sources.load import Config, parse_sources
from aggregator.store.storage import Storage
from tests.support.openai_stub import LLAMA_CPP, OpenAIStub, Reply, reply_json, request_format

GERMAN = "every item in German (de), whatever language the"
SUMMARY = "You write short, neutral summaries of news stories"


def demo_with_llm(
    demo_url: str, llm_url: str, out: Path, data: Path, *, language: str, model: str
) -> Config:
    """The demo's own sources.yaml, with the site's language and an LLM endpoint set."""
    text = demo_config_text(demo_url, out_dir=out, data_dir=data)
    text = text.replace("  language: en\n", f"  language: {language}\n", 1)
    llm = f"  llm:\n    base_url: {json.dumps(llm_url)}\n    model: {model}\n    max_retries: 0\n"
    text = text.replace("sources:\n", llm + "sources:\n", 1)
    parsed = parse_sources(text, "demo sources.yaml")
    return Config(settings=parsed.settings, sources=tuple(parsed.sources), path=None)


def german_answer(request: dict[str, Any]) -> Reply:
    """A German answer citing the first two articles; grounded as translations are (numbers
    only, none here) where the cited articles are not German."""
    system, user = (m["content"] for m in request["messages"])
    if "same_event" in system:  # clustering asks about an uncertain merge
        return reply_json({"same_event": False})
    two = "\n[2] " in user
    return reply_json(
        {
            "headline": "Zusammenfassung der Meldungen des Tages",
            "sentences": [
                {"text": "Mehrere Medien berichten übereinstimmend über das Ereignis.",
                 "citations": [1, 2] if two else [1]},
                {"text": "Die Berichte nennen die wichtigsten Beteiligten und Orte.",
                 "citations": [2] if two else [1]},
            ],
            "talking_points": [], "perspectives": [], "timeline": [],
            "why_it_matters": {"text": "", "citations": []},
        }
    )  # fmt: skip


def test_the_demo_has_outlets_in_four_languages() -> None:
    languages = {outlet.language for outlet in load_demo_content().outlets}
    assert {"en", "de", "es", "fr"} <= languages


def test_the_demo_digest_in_german_against_the_stub(tmp_path: Path) -> None:
    """language: de asks every prompt for German; source titles stay as published; a rerun
    asks nothing; llama.cpp's refusal of json_schema is met once, then json_object."""
    out = tmp_path / "site"
    with DemoServer() as demo, OpenAIStub([german_answer], rejects=LLAMA_CPP) as stub:
        config = demo_with_llm(
            demo.base_url, stub.base_url, out, tmp_path / "data", language="de", model="stub-model"
        )
        with Storage(f"sqlite:///{tmp_path / 'demo.db'}") as storage:
            report = run_once(config, storage, out_dir=out)
            sent = len(stub.requests)
            assert sent >= 5 and report.summarise.llm >= 3, report.summarise
            again = run_once(config, storage, out_dir=out)
            assert len(stub.requests) == sent and again.summarise.written == 0
    summaries = [r for r in stub.requests if SUMMARY in r["messages"][0]["content"]]
    formats = [request_format(r) for r in summaries]
    assert formats[0] == "json_schema" and set(formats[1:]) == {"json_object"}
    for request in summaries:
        system, user = (m["content"] for m in request["messages"])
        assert GERMAN in system
        assert user.rstrip().endswith("Write in German (de).")
    titles = re.findall(r"^Title: (.*)$", "\n".join(
        r["messages"][1]["content"] for r in summaries), re.M)  # fmt: skip
    outlets = load_demo_content().outlets
    published = {a.title for o in outlets for a in o.articles}
    assert set(titles) <= published  # as published, whatever their language
    assert len({o.language for o in outlets for a in o.articles if a.title in titles}) >= 2
    pages = "".join(p.read_text() for p in (out / "stories").glob("*.html"))
    assert "Mehrere Medien berichten übereinstimmend über das Ereignis." in pages


@pytest.mark.skipif(
    not os.environ.get("AGGREGATOR_TEST_LLM_URL"),
    reason="set AGGREGATOR_TEST_LLM_URL (and AGGREGATOR_TEST_LLM_MODEL) to run against a model",
)
def test_the_demo_digest_against_a_real_model(tmp_path: Path) -> None:  # pragma: no cover
    url = os.environ["AGGREGATOR_TEST_LLM_URL"]
    model = os.environ.get("AGGREGATOR_TEST_LLM_MODEL", "qwen2.5-1.5b-instruct")
    out = tmp_path / "site"
    with DemoServer() as demo:
        config = demo_with_llm(
            demo.base_url, url, out, tmp_path / "data", language="en", model=model
        )
        with Storage(f"sqlite:///{tmp_path / 'demo.db'}") as storage:
            report = run_once(config, storage, out_dir=out)
            print(report.summarise)
            assert report.summarise.written >= 1
            assert run_once(config, storage, out_dir=out).summarise.llm_calls == 0
