"""A small, real OpenAI-compatible server on 127.0.0.1 for tests.

    with OpenAIStub([reply_json({"headline": ...}), Reply(status=429)]) as stub:
        settings = LLMSettings(base_url=stub.base_url, api_key="sk-test")

``POST /v1/chat/completions`` answers with the scripted replies in order; the last one repeats
once the script runs out. A reply may also be a callable ``(request_json) -> Reply``.
``stub.requests`` holds every request body (parsed JSON) and ``stub.headers`` their headers;
``stub.max_in_flight`` is the most requests it was answering at once (concurrency tests).
``rejects`` maps a structured-output mode ("json_schema", "json_object", "prompt": see
``request_format``) to the error Reply a server that lacks it answers, before the script:
``OpenAIStub(script, rejects=LLAMA_CPP)`` behaves like llama.cpp's server.
Stopping a server takes up to half a second, so test modules share one and ``reset`` it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.support.loopback import LoopbackServer, Request, Response


@dataclass
class Reply:
    """One scripted answer: a chat completion with ``content``, or an error ``status``."""

    content: str | None = None  # assistant message text (status 200)
    status: int = 200
    finish_reason: str = "stop"
    headers: dict[str, str] = field(default_factory=dict)
    error: str = "scripted failure"  # error message for non-200 replies
    delay: float = 0.0  # seconds before answering (timeouts)
    raw: bytes | None = None  # send these bytes verbatim instead


def reply_json(obj: Any, *, before: str = "", after: str = "") -> Reply:
    """A completion whose content is ``obj`` as JSON, optionally wrapped in prose."""
    return Reply(content=f"{before}{json.dumps(obj)}{after}")


Script = Reply | Callable[[dict[str, Any]], Reply]

# What servers answer to a structured-output mode they lack. LLAMA_CPP is what
# llama-cpp-python's server (../shared/tools/local-llm.sh) answered to json_schema.
LLAMA_CPP = {
    "json_schema": Reply(
        status=500,
        error="1 validation error: {'type': 'literal_error', 'loc': ('body', 'response_format', "
        "'type'), 'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}",
    )
}
NO_JSON_MODES = {
    "json_schema": Reply(status=400, error="Unrecognized request argument: response_format"),
    "json_object": Reply(status=422, error="response_format: unsupported type json_object"),
}


def request_format(body: dict[str, Any]) -> str:
    """The structured-output mode of a request: json_schema, json_object or prompt (none)."""
    kind = (body.get("response_format") or {}).get("type")
    return kind if kind in {"json_schema", "json_object"} else "prompt"


class OpenAIStub:
    """The loopback server plus the OpenAI chat-completions wire format."""

    def __init__(
        self,
        script: Sequence[Script],
        *,
        model: str = "stub-model",
        rejects: Mapping[str, Reply] | None = None,
    ) -> None:
        self.script = list(script)
        self.rejects = dict(rejects or {})
        self._scripted = 0  # requests the script answered
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.times: list[float] = []  # monotonic arrival time of each request
        self.in_flight = 0  # requests being answered now
        self.max_in_flight = 0  # the most at once since the last reset
        self._lock = threading.Lock()
        self._server = LoopbackServer({"/v1/chat/completions": self._handle})

    def reset(
        self, script: Sequence[Script], rejects: Mapping[str, Reply] | None = None
    ) -> OpenAIStub:
        """A new script and empty records, for the next test on a shared server."""
        with self._lock:
            self.script = list(script)
            self.rejects = dict(rejects or {})
            self._scripted = 0
            self.requests.clear()
            self.headers.clear()
            self.times.clear()
            self.max_in_flight = 0
        return self

    @property
    def base_url(self) -> str:
        return self._server.url("/v1")

    def __enter__(self) -> OpenAIStub:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)

    def _next(self) -> Script:
        with self._lock:
            if not self.script:
                return Reply(status=500, error="the test gave the stub no script")
            # rejected requests (``rejects``) do not move the script on
            index = min(self._scripted, len(self.script) - 1)
            self._scripted += 1
            return self.script[index]

    def _handle(self, request: Request) -> Response:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return self._answer(request)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _answer(self, request: Request) -> Response:
        if request.method != "POST":
            return _error(405, "method not allowed", "invalid_request_error")
        try:
            body = json.loads(request.body)
        except ValueError:
            return _error(400, "request body is not JSON", "invalid_request_error")
        with self._lock:
            self.requests.append(body)
            self.headers.append({k.lower(): v for k, v in request.headers.items()})
            self.times.append(time.monotonic())
        rejected = self.rejects.get(request_format(body))
        step = rejected or self._next()
        reply = step(body) if callable(step) else step
        if reply.delay:
            time.sleep(reply.delay)
        if reply.raw is not None:
            return Response(reply.status, reply.raw, {"Content-Type": "application/json"})
        if reply.status != 200:
            kind = "rate_limit_exceeded" if reply.status == 429 else "server_error"
            response = _error(reply.status, reply.error, kind)
            response.headers.update(reply.headers)
            return response
        return self._completion(body, reply)

    def _completion(self, body: dict[str, Any], reply: Reply) -> Response:
        prompt_chars = sum(len(m.get("content") or "") for m in body.get("messages", []))
        content = reply.content or ""
        payload = {
            "id": f"chatcmpl-stub{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", self.model),
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": reply.finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_chars // 4,
                "completion_tokens": len(content) // 4,
                "total_tokens": prompt_chars // 4 + len(content) // 4,
            },
        }
        headers = {"Content-Type": "application/json", **reply.headers}
        return Response(200, json.dumps(payload).encode(), headers)


def _error(status: int, message: str, kind: str) -> Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return Response(status, json.dumps(body).encode(), {"Content-Type": "application/json"})
