"""The OpenAI-compatible client against a real loopback server speaking the OpenAI wire format."""

from __future__ import annotations

import dataclasses
import socket
import time

import pytest

from aggregator.errors import (
    LLMBadOutput,
    LLMBudgetExceeded,
    LLMCircuitOpen,
    LLMError,
    LLMRequestRejected,
    LLMUnavailable,
)
from aggregator.settings import LLMSettings
from aggregator.summarise.llm import (
    PLACEHOLDER_KEY,
    LLMClient,
    extract_json_object,
    without_sizes,
)
from tests.support.openai_stub import (
    LLAMA_CPP,
    NO_JSON_MODES,
    OpenAIStub,
    Reply,
    reply_json,
    request_format,
)

KEY = "sk-test-Secret1234567890abcdef"
GOOD = {"headline": "Quake hits coast", "sentences": [{"text": "A quake hit.", "citations": [1]}]}


@pytest.fixture
def stub(openai_server: OpenAIStub) -> OpenAIStub:
    return openai_server.reset([])


def client_for(stub: OpenAIStub, **overrides: object) -> LLMClient:
    settings = LLMSettings(
        base_url=stub.base_url, api_key=KEY, model="stub-model", timeout=5, **overrides
    )
    return LLMClient(settings, backoff_base=0.01, backoff_cap=0.2)


def test_chat_json_sends_the_settings_and_returns_the_object(stub: OpenAIStub) -> None:
    stub.reset([reply_json(GOOD)])
    client = client_for(stub, max_tokens=321, temperature=0.7)
    assert client.chat_json("be brief", "the data") == GOOD
    body = stub.requests[0]
    assert body["model"] == "stub-model"
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "the data"},
    ]
    assert body["response_format"] == {"type": "json_object"}
    assert body["max_tokens"] == 321
    assert body["temperature"] == 0.7
    assert stub.headers[0]["authorization"] == f"Bearer {KEY}"
    assert client.usage.calls == 1
    assert client.usage.prompt_tokens > 0 and client.usage.completion_tokens > 0


def test_base_url_without_key_sends_a_placeholder_key(stub: OpenAIStub) -> None:
    stub.reset([reply_json(GOOD)])
    settings = LLMSettings(base_url=stub.base_url, model="llama3")
    assert LLMClient(settings).chat_json("s", "u") == GOOD
    assert stub.headers[0]["authorization"] == f"Bearer {PLACEHOLDER_KEY}"


@pytest.mark.parametrize(
    "content",
    [
        'Here is the summary you asked for:\n{"headline": "Quake hits coast", "sentences": '
        '[{"text": "A quake hit.", "citations": [1]}]}\nLet me know if you need more.',
        '```json\n{"headline": "Quake hits coast", "sentences": '
        '[{"text": "A quake hit.", "citations": [1]}]}\n```',
        'Sure {as requested}: ```{"headline": "Quake hits coast", "sentences": '
        '[{"text": "A quake hit.", "citations": [1]}]}```',
    ],
)
def test_prose_and_fences_around_json_are_ignored(stub: OpenAIStub, content: str) -> None:
    stub.reset([Reply(content=content)])
    assert client_for(stub).chat_json("s", "u") == GOOD


@pytest.mark.parametrize(
    "reply",
    [
        Reply(content='{"headline": "Quake", "sentences": [{"text": "A qu', finish_reason="length"),
        Reply(content='{"headline": "Quake", "sentences": [{"text": "A quake"}'),
        Reply(content="I cannot help with that."),
        Reply(content=""),
        Reply(content="[1, 2, 3]"),
    ],
)
def test_truncated_or_missing_json_is_bad_output(stub: OpenAIStub, reply: Reply) -> None:
    stub.reset([reply])
    client = client_for(stub)
    with pytest.raises(LLMBadOutput):
        client.chat_json("s", "u")
    assert len(stub.requests) == 1  # bad output is the caller's to re-ask, not a transport retry


def test_extract_json_object_does_not_take_an_inner_object_of_a_truncated_one() -> None:
    with pytest.raises(LLMBadOutput, match="truncated"):
        extract_json_object('{"outer": {"inner": 1}, "sentences": [')
    assert extract_json_object('{"text": "a } and a { in a string"}') == {
        "text": "a } and a { in a string"
    }


def test_429_with_retry_after_is_honoured_then_succeeds(stub: OpenAIStub) -> None:
    script = [Reply(status=429, headers={"Retry-After": "1"}), reply_json(GOOD)]
    stub.reset(script)
    client = LLMClient(
        LLMSettings(base_url=stub.base_url, api_key=KEY, max_retries=2),
        backoff_base=0.01,
        backoff_cap=5.0,
    )
    assert client.chat_json("s", "u") == GOOD
    assert len(stub.requests) == 2
    assert stub.times[1] - stub.times[0] >= 0.95  # waited as asked, not the 0.01 s backoff
    assert client.usage.calls == 2 and client.usage.errors == 1


@pytest.mark.parametrize("retry_after", ["3600", "Wed, 21 Oct 2099 07:28:00 GMT", "soon-ish"])
def test_absurd_or_garbage_retry_after_is_clamped(stub: OpenAIStub, retry_after: str) -> None:
    script = [Reply(status=503, headers={"Retry-After": retry_after}), reply_json(GOOD)]
    stub.reset(script)
    started = time.monotonic()
    assert client_for(stub).chat_json("s", "u") == GOOD
    assert time.monotonic() - started < 3


def test_a_long_retry_after_waits_llm_max_retry_after_at_most(stub: OpenAIStub) -> None:
    stub.reset([Reply(status=429, headers={"Retry-After": "20"}), reply_json(GOOD)])
    settings = LLMSettings(base_url=stub.base_url, api_key=KEY, max_retry_after=0.5)
    client = LLMClient(settings, backoff_base=0.01, backoff_cap=30.0)
    assert client.chat_json("s", "u") == GOOD
    waited = stub.times[1] - stub.times[0]
    assert 0.45 <= waited < 2  # the setting's 0.5 s, not the server's 20 s


def test_503_with_retry_after_is_honoured(stub: OpenAIStub) -> None:
    stub.reset([Reply(status=503, headers={"Retry-After": "1"}), reply_json(GOOD)])
    client = LLMClient(LLMSettings(base_url=stub.base_url, api_key=KEY), backoff_base=0.01)
    assert client.chat_json("s", "u") == GOOD
    assert stub.times[1] - stub.times[0] >= 0.95


def test_5xx_is_retried_with_growing_backoff(stub: OpenAIStub) -> None:
    stub.reset([Reply(status=500), Reply(status=502), reply_json(GOOD)])
    settings = LLMSettings(base_url=stub.base_url, api_key=KEY, max_retries=2)
    client = LLMClient(settings, backoff_base=0.2, backoff_cap=5.0)
    assert client.chat_json("s", "u") == GOOD
    first, second = (b - a for a, b in zip(stub.times, stub.times[1:], strict=False))
    # 0.2 s then 0.4 s, each jittered down by at most a quarter
    assert 0.15 <= first < 1.0 and 0.3 <= second < 1.5
    assert client.usage.calls == 3 and client.usage.errors == 2


def test_a_read_timeout_is_never_retried_however_many_retries_are_allowed(
    stub: OpenAIStub,
) -> None:
    stub.reset([Reply(content="{}", delay=0.8), reply_json(GOOD)])
    settings = LLMSettings(base_url=stub.base_url, api_key=KEY, timeout=0.3, max_retries=5)
    with pytest.raises(LLMUnavailable, match="not retried"):
        LLMClient(settings, backoff_base=0.01).chat_json("s", "u")
    assert len(stub.requests) == 1


def test_500_forever_gives_up_after_bounded_retries(stub: OpenAIStub) -> None:
    stub.reset([Reply(status=500, error="upstream exploded")])
    client = client_for(stub, max_retries=2)
    started = time.monotonic()
    with pytest.raises(LLMUnavailable) as raised:
        client.chat_json("s", "u")
    assert time.monotonic() - started < 3
    assert len(stub.requests) == 3
    assert "HTTP 500" in str(raised.value) and "upstream exploded" in str(raised.value)


def test_a_hanging_server_times_out_and_gives_up_without_a_retry(stub: OpenAIStub) -> None:
    # A local server serving one request at a time is still working on the first one: a resent
    # prompt would only wait behind it (issue 12). Before: retried max_retries times.
    stub.reset([Reply(content="{}", delay=1.0)])
    settings = LLMSettings(base_url=stub.base_url, api_key=KEY, timeout=0.3, max_retries=1)
    client = LLMClient(settings, backoff_base=0.01, backoff_cap=0.1)
    started = time.monotonic()
    with pytest.raises(LLMUnavailable, match=r"no answer within 0\.3s \(not retried\)"):
        client.chat_json("s", "u")
    assert time.monotonic() - started < 1
    assert len(stub.requests) == 1
    assert not client.breaker_open  # one timeout; the default breaker needs two in a row


def test_consecutive_timeouts_open_the_breaker_for_the_rest_of_the_run(
    stub: OpenAIStub, caplog: pytest.LogCaptureFixture
) -> None:
    stub.reset([Reply(content="{}", delay=0.6)])
    settings = LLMSettings(base_url=stub.base_url, api_key=KEY, timeout=0.2, max_retries=2)
    client = LLMClient(settings, backoff_base=0.01, backoff_cap=0.1)
    with pytest.raises(LLMUnavailable, match="not retried"):
        client.chat_json("s", "u")
    with pytest.raises(LLMCircuitOpen, match="after 2 consecutive connection failures or timeouts"):
        client.chat_json("s", "u")
    started = time.monotonic()
    for _ in range(3):
        with pytest.raises(LLMCircuitOpen):
            client.chat_json("s", "u")
    assert time.monotonic() - started < 0.1  # nothing sent, nothing waited for
    assert len(stub.requests) == 2 and client.usage.calls == 2 and client.breaker_open
    said = [r for r in caplog.records if "calls stopped" in r.getMessage()]
    assert len(said) == 1  # logged once
    client.reset_budget()  # the next run tries again
    stub.reset([reply_json(GOOD)])
    assert client.chat_json("s", "u") == GOOD and not client.breaker_open


def test_connection_failures_open_the_breaker_at_the_setting() -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = LLMSettings(
        base_url=f"http://127.0.0.1:{port}/v1", timeout=2, max_retries=5, breaker_failures=3
    )
    client = LLMClient(settings, backoff_base=0.01, backoff_cap=0.02)
    with pytest.raises(LLMCircuitOpen, match="after 3 consecutive") as raised:
        client.chat_json("s", "u")
    assert "cannot connect" in str(raised.value)
    assert client.usage.calls == 3  # the breaker cut the six attempts short
    with pytest.raises(LLMCircuitOpen):
        client.chat_json("s", "u")
    assert client.usage.calls == 3


def test_an_http_answer_between_failures_keeps_the_breaker_closed(stub: OpenAIStub) -> None:
    slow = Reply(content="{}", delay=0.6)
    stub.reset([slow, Reply(status=500), slow, reply_json(GOOD)])
    settings = LLMSettings(base_url=stub.base_url, api_key=KEY, timeout=0.2, max_retries=1)
    client = LLMClient(settings, backoff_base=0.01, backoff_cap=0.02)
    for _ in range(2):
        with pytest.raises(LLMUnavailable):
            client.chat_json("s", "u")
    assert not client.breaker_open  # timeout, 500 (answered), timeout: never two in a row
    assert client.chat_json("s", "u") == GOOD


@pytest.mark.parametrize(
    ("base_url", "seconds"),
    [
        ("http://127.0.0.1:8080/v1", 300.0),
        ("http://localhost:11434/v1", 300.0),
        ("http://192.168.1.20:8000/v1", 300.0),
        ("http://[::1]:8000/v1", 300.0),
        ("https://api.openai.com/v1", 60.0),
        (None, 60.0),
    ],
)
def test_the_default_timeout_is_longer_for_a_local_server(
    base_url: str | None, seconds: float
) -> None:
    assert LLMSettings(base_url=base_url).request_timeout == seconds
    assert LLMSettings(base_url=base_url, timeout=12).request_timeout == 12


def test_an_unreachable_base_url_is_unavailable() -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = LLMSettings(base_url=f"http://127.0.0.1:{port}/v1", timeout=2, max_retries=1)
    client = LLMClient(settings, backoff_base=0.01, backoff_cap=0.1)
    with pytest.raises(LLMUnavailable, match="cannot connect"):
        client.chat_json("s", "u")
    assert client.usage.calls == 2


def test_auth_errors_are_not_retried_and_never_show_the_key(stub: OpenAIStub) -> None:
    # Some servers echo the key they were given; our message must not repeat it.
    echo = Reply(status=401, error=f"Incorrect API key provided: {KEY}.")
    stub.reset([echo])
    client = client_for(stub, max_retries=3)
    with pytest.raises(LLMRequestRejected) as raised:
        client.chat_json("s", "u")
    assert len(stub.requests) == 1
    text = str(raised.value)
    assert "HTTP 401" in text and "API key" in text
    assert KEY not in text and "Secret1234567890" not in text
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_the_budget_stops_calls(stub: OpenAIStub) -> None:
    stub.reset([reply_json(GOOD)])
    client = client_for(stub, max_calls_per_run=2)
    client.chat_json("s", "u")
    client.chat_json("s", "u")
    with pytest.raises(LLMBudgetExceeded, match="budget of 2"):
        client.chat_json("s", "u")
    assert len(stub.requests) == 2
    client.reset_budget()
    assert client.chat_json("s", "u") == GOOD
    assert len(stub.requests) == 3


def test_retries_spend_the_budget_too(stub: OpenAIStub) -> None:
    stub.reset([Reply(status=500)])
    client = client_for(stub, max_calls_per_run=2, max_retries=5)
    with pytest.raises(LLMBudgetExceeded):
        client.chat_json("s", "u")
    assert len(stub.requests) == 2
    assert issubclass(LLMBudgetExceeded, LLMError)


def test_a_server_without_json_mode_is_asked_again_without_it(stub: OpenAIStub) -> None:
    def handler(body: dict[str, object]) -> Reply:
        if "response_format" in body:
            return Reply(status=400, error="Unrecognized request argument: response_format")
        return reply_json(GOOD)

    stub.reset([handler])
    client = client_for(stub, max_retries=0)
    assert client.chat_json("s", "u") == GOOD
    assert client.chat_json("s", "u") == GOOD
    assert ["response_format" in r for r in stub.requests] == [True, False, False]


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"<html>Bad gateway</html>", "unreadable response"),
        (b"", "unreadable response"),
        (b'{"object": "chat.completion"}', "no choices"),
        (b'{"choices": [{"index": 0, "message": null, "finish_reason": "stop"}]}', "empty"),
        (
            b'{"choices": [{"index": 0, "finish_reason": "stop", "message": '
            b'{"role": "assistant", "content": null, "refusal": "I cannot help."}}]}',
            "refused",
        ),
    ],
)
def test_a_200_that_is_not_a_usable_completion_is_bad_output(
    stub: OpenAIStub, raw: bytes, why: str
) -> None:
    stub.reset([Reply(raw=raw)])
    with pytest.raises(LLMBadOutput, match=why):
        client_for(stub).chat_json("s", "u")


# --- structured output: json_schema, json_object with the schema, the schema in the prompt -------

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["headline"],
    "properties": {"headline": {"type": "string"}},
}


def ask(client: LLMClient) -> dict[str, object]:
    return client.chat_json("be brief", "the data", SCHEMA, "story_summary")


@pytest.mark.parametrize("mode", ["json_schema", "json_object", "prompt"])
def test_each_structured_output_mode_sends_the_schema_its_way(stub: OpenAIStub, mode: str) -> None:
    stub.reset([reply_json(GOOD)])
    client = client_for(stub, structured_output=mode)
    assert ask(client) == GOOD
    [body] = stub.requests
    system = body["messages"][0]["content"]
    if mode == "json_schema":
        assert body["response_format"] == {
            "type": "json_schema",
            "json_schema": {"name": "story_summary", "schema": SCHEMA, "strict": True},
        }
    elif mode == "json_object":  # llama.cpp enforces the attached schema by grammar
        assert body["response_format"] == {"type": "json_object", "schema": SCHEMA}
    else:
        assert "response_format" not in body
        assert system.startswith("be brief") and '"required":["headline"]' in system
    if mode != "prompt":
        assert system == "be brief"  # the schema travels in response_format only


@pytest.mark.parametrize(
    ("rejects", "sent", "works_in"),
    [
        ({}, ["json_schema"] * 3, "json_schema"),
        # llama.cpp: HTTP 500 to json_schema, json_object with a schema works
        (LLAMA_CPP, ["json_schema", "json_object", "json_object", "json_object"], "json_object"),
        # a server without JSON modes: 400 to json_schema, 422 to json_object
        (NO_JSON_MODES, ["json_schema", "json_object", "prompt", "prompt", "prompt"], "prompt"),
    ],
    ids=["openai", "llama.cpp", "no-json-modes"],
)
def test_auto_falls_back_once_and_remembers_the_working_mode(
    stub: OpenAIStub, rejects: dict[str, Reply], sent: list[str], works_in: str
) -> None:
    stub.reset([reply_json(GOOD)], rejects=rejects)
    client = client_for(stub, max_retries=0)  # a rejected mode is no retry: it needs none
    for _ in range(3):
        assert ask(client) == GOOD
    assert [request_format(r) for r in stub.requests] == sent  # never a rejected mode again
    assert client.structured_output == works_in
    assert client.usage.calls == len(sent)  # each rejected request spent a call
    client.reset_budget()  # a new run asks the server again
    assert client.structured_output == "json_schema"


def test_a_bare_500_is_an_outage_not_a_rejected_mode(stub: OpenAIStub) -> None:
    stub.reset([Reply(status=500, error="internal error"), reply_json(GOOD)])
    client = client_for(stub, max_retries=1)
    assert ask(client) == GOOD
    assert [request_format(r) for r in stub.requests] == ["json_schema", "json_schema"]
    assert client.structured_output == "json_schema"


@pytest.mark.parametrize("status", [401, 404, 429])
def test_auth_url_and_busy_errors_are_not_taken_for_a_rejected_mode(
    stub: OpenAIStub, status: int
) -> None:
    stub.reset([Reply(status=status, error="response_format says nothing here")])
    client = client_for(stub, max_retries=0)
    with pytest.raises(LLMError):
        ask(client)
    assert client.structured_output == "json_schema" and len(stub.requests) == 1


def test_an_explicit_mode_is_never_changed_by_auto(stub: OpenAIStub) -> None:
    stub.reset([reply_json(GOOD)], rejects=LLAMA_CPP)
    client = client_for(stub, structured_output="json_schema", max_retries=0)
    with pytest.raises(LLMError):
        ask(client)
    assert [request_format(r) for r in stub.requests] == ["json_schema"]


def test_structured_output_is_validated() -> None:
    with pytest.raises(ValueError, match="structured_output"):
        LLMSettings(structured_output="xml")  # type: ignore[arg-type]


def test_concurrent_requests_step_down_once_and_say_so_once(
    stub: OpenAIStub, caplog: pytest.LogCaptureFixture
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    slow = dict(LLAMA_CPP)
    slow["json_schema"] = dataclasses.replace(LLAMA_CPP["json_schema"], delay=0.2)
    stub.reset([reply_json(GOOD)], rejects=slow)
    client = client_for(stub, max_retries=0)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: ask(client), range(8)))
    assert answers == [GOOD] * 8
    formats = [request_format(r) for r in stub.requests]
    assert 1 <= formats.count("json_schema") <= 4  # only those sent before the first rejection
    assert formats.count("json_object") == 8 and client.structured_output == "json_object"
    said = [r for r in caplog.records if "rejected structured output" in r.getMessage()]
    assert len(said) == 1


def test_without_sizes_removes_size_keywords_at_any_depth_and_keeps_fields_so_named() -> None:
    schema = {
        "type": "object",
        "required": ["minimum", "rows"],
        "properties": {
            "minimum": {"type": "integer", "minimum": 0},
            "rows": {"type": "array", "minItems": 1, "items": {"type": "string", "maxLength": 9}},
        },
    }
    assert without_sizes(schema) == {
        "type": "object",
        "required": ["minimum", "rows"],
        "properties": {
            "minimum": {"type": "integer"},
            "rows": {"type": "array", "items": {"type": "string"}},
        },
    }
