"""OpenAI-compatible chat client: explicit timeouts, bounded retries, per-run and daily budgets,
a ledger of what each day and purpose spent; safe to share between threads (llm.concurrency).

The only module that imports ``openai``. Every failure surfaces as an ``LLMError`` whose message
names what went wrong and what to do, and never contains the API key.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import openai

from aggregator.errors import (
    LLMBadOutput,
    LLMBudgetExceeded,
    LLMCircuitOpen,
    LLMDailyBudgetExceeded,
    LLMRequestRejected,
    LLMUnavailable,
)
from aggregator.records import LLMUsageLine
from aggregator.settings import LLMSettings, ModelPrice
from aggregator.summarise.ledger import local_day
from aggregator.times import retry_after_seconds
from aggregator.urls import http_url

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0  # seconds to open a connection, within the request's timeout
PLACEHOLDER_KEY = "not-needed"  # local servers (Ollama, llama.cpp, vLLM) want no key
RETRYABLE_STATUS = frozenset({408, 409, 429})  # plus every 5xx
_SECRET_LIKE = re.compile(r"\b(sk|pk|key)-[A-Za-z0-9_\-]{8,}")
_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?|```")
# structured_output modes, in the order "auto" tries them: a JSON Schema the server enforces,
# JSON mode with the schema attached (llama.cpp turns it into a grammar), the schema in the
# prompt only (any server).
FORMAT_MODES = ("json_schema", "json_object", "prompt")
# Words of an error answer that is about the response_format we sent (llama.cpp answers HTTP 500
# to json_schema: 'response_format type must be one of "text" or "json_object"').
_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "schema", "grammar")
# Statuses that say nothing about the request's format: auth, a wrong URL, busy.
_NOT_ABOUT_FORMAT = frozenset({401, 403, 404, 408, 409, 429})


@dataclass
class Spent:
    """Calls and tokens of one (day, purpose) of a run's ledger."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class LLMUsage:
    """What this run spent; mutable, reset with ``LLMClient.reset_budget``. Threads that
    summarise at once change it only while holding ``lock``."""

    calls: int = 0  # HTTP requests sent (retries included: they count against the budget)
    errors: int = 0  # requests that failed (status, timeout, connection)
    prompt_tokens: int = 0  # as reported by the server (0 when it reports none)
    completion_tokens: int = 0
    fallbacks: int = 0  # summaries that fell back to extractive (bumped by the summariser)
    # Bumped by the summariser, by checks.Failure reason: answers rejected (each try counts),
    # sentences (and headlines, "headline_...") dropped by grounding, why stories fell back.
    rejected: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    fallback_reasons: Counter[str] = field(default_factory=Counter)
    # The same calls and tokens by (local day, purpose): what the usage ledger stores.
    ledger: dict[tuple[str, str], Spent] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    def count(self, kind: str, reason: str, n: int = 1) -> None:
        """Bump ``rejected``, ``dropped`` or ``fallback_reasons`` by reason, thread-safely."""
        with self.lock:
            counter: Counter[str] = getattr(self, kind)
            counter[reason] += n


class LLMClient:
    """One client per run: ``chat_json`` asks for a JSON object and returns it as a dict."""

    def __init__(
        self,
        settings: LLMSettings,
        *,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
        timezone: str = "UTC",
    ) -> None:
        self.settings = settings
        self.model = settings.model
        self.usage = LLMUsage()
        self.run_id = _new_run_id()  # the usage ledger's key for this run
        self._timezone = timezone  # the ledger's days and the daily budget's are local
        self._lock = threading.RLock()  # budgets, the breaker and _dropped, across threads
        # What the ledger held for a day before this run began (calls, tokens): the daily
        # budget counts it with this run's own spending (set_spent_before).
        self._spent_before: dict[str, tuple[int, int]] = {}
        self._daily_said = False  # the daily budget's "used up" is logged once per run
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        # the ceiling on a server's Retry-After
        self._retry_after_cap = min(backoff_cap, settings.max_retry_after)
        self._secret = settings.api_key or ""
        # Parameters a server rejected with a 400 once: not sent again (older local servers).
        self._dropped: set[str] = set()
        # A bad base_url is reported on every call instead of raised here, so a run with a
        # misconfigured endpoint still produces (extractive) summaries.
        self._config_error = _base_url_problem(settings.base_url)
        # The circuit breaker: connection failures and timeouts in a row (any HTTP answer resets
        # it); at settings.breaker_failures no further call is sent in this run.
        self._failures_in_a_row = 0
        self._breaker: str = ""  # why the breaker opened; "" while closed
        self._timeout = settings.request_timeout
        # The structured-output mode requests are sent in; under "auto" it moves down
        # FORMAT_MODES when the server rejects one, and never goes back within the run.
        self._auto_format = settings.structured_output == "auto"
        self._format: str = "json_schema" if self._auto_format else settings.structured_output
        self._openai = openai.OpenAI(
            base_url=None if self._config_error else settings.base_url,
            api_key=settings.api_key or PLACEHOLDER_KEY,
            # A refused or unroutable endpoint is known within seconds; the answer takes long.
            timeout=openai.Timeout(self._timeout, connect=min(self._timeout, CONNECT_TIMEOUT)),
            max_retries=0,  # our own loop below: bounded, budgeted, Retry-After clamped
        )

    def close(self) -> None:
        """Close pooled connections (the client is unusable afterwards)."""
        self._openai.close()

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reset_budget(self) -> None:
        """Start a new run: a fresh ledger, a full budget and a closed circuit breaker."""
        with self._lock:
            self.usage = LLMUsage()
            self.run_id = _new_run_id()
            self._spent_before = {}
            self._daily_said = False
            self._failures_in_a_row = 0
            self._breaker = ""
            if self._auto_format:
                self._format = "json_schema"  # a new run asks the server again

    @property
    def structured_output(self) -> str:
        """The mode the next request is sent in: json_schema, json_object or prompt."""
        return self._format

    def today(self, now: datetime | None = None) -> str:
        """The local date (settings' timezone) the ledger files a call of ``now`` under."""
        return local_day(now or datetime.now(UTC), self._timezone)

    def set_spent_before(self, day: str, calls: int, tokens: int) -> None:
        """What earlier runs spent on ``day`` (the ledger's sum), for the daily budget."""
        with self._lock:
            self._spent_before[day] = (calls, tokens)

    def usage_lines(self, prices: dict[str, ModelPrice] | None = None) -> list[LLMUsageLine]:
        """This run's ledger rows so far, one per (day, purpose), costed with ``prices``."""
        with self.usage.lock:
            spent = sorted((key, Spent(**vars(value))) for key, value in self.usage.ledger.items())
        return [
            LLMUsageLine(
                day=day,
                model=self.model,
                purpose=purpose,
                calls=s.calls,
                prompt_tokens=s.prompt_tokens,
                completion_tokens=s.completion_tokens,
                cost=usage_cost(prices or {}, self.model, s.prompt_tokens, s.completion_tokens),
                run=self.run_id,
            )
            for (day, purpose), s in spent
        ]

    @property
    def breaker_open(self) -> bool:
        """True once consecutive connection failures or timeouts stopped calls for this run."""
        return bool(self._breaker)

    def chat_json(
        self,
        system: str,
        user: str,
        schema: dict[str, Any] | None = None,
        name: str = "answer",
        *,
        purpose: str = "summary",
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> dict[str, Any]:
        """Send one system + user message; return the JSON object the model answered with.

        ``schema`` (a JSON Schema named ``name``) is sent the way ``structured_output`` says;
        without one, JSON mode is asked for. ``purpose`` files the call's usage in the ledger
        ("summary", "ask", "cluster"); ``max_tokens`` caps a short answer below
        ``settings.max_tokens``; ``temperature`` overrides ``settings.temperature`` (0: a verdict
        that should not vary)."""
        ask = _Ask(system, user, schema, name, max_tokens, temperature)
        completion = self._complete(ask, purpose)
        return _answer_object(completion)

    def redact(self, text: str) -> str:
        """Remove the API key (and anything shaped like one) from text meant for people."""
        if len(self._secret) >= 4:
            text = text.replace(self._secret, "***")
        return _SECRET_LIKE.sub(r"\1-***", text)

    # -- transport -----------------------------------------------------------------------------

    def _complete(self, ask: _Ask, purpose: str) -> Any:
        """One completion with bounded retries; every attempt spends one call of the budget."""
        if self._config_error:
            raise LLMRequestRejected(self._config_error)
        attempts = 1 + self.settings.max_retries
        attempt = 0
        while True:
            key = self._spend_call(purpose)  # raises LLMCircuitOpen once the breaker is open
            params = self._request(ask)
            try:
                completion = self._openai.chat.completions.create(**params)
            except openai.APIStatusError as exc:
                self._error()
                with self._lock:
                    self._failures_in_a_row = 0  # it answered: reachable and not stuck
                status, detail = exc.status_code, self._server_message(exc)
                if self._format_rejected(status, detail, ask, params):
                    continue  # resend in the next structured-output mode
                if status == 400 and self._adapt_to(detail, params):
                    continue  # resend without the parameter this server does not support
                if not _retryable(status):
                    raise LLMRequestRejected(self._rejected_message(status, detail)) from None
                problem, wait_hint = f"HTTP {status}: {detail}", _retry_after(exc.response)
            except openai.APITimeoutError as exc:
                self._error()
                if type(exc.__cause__).__name__ == "ConnectTimeout":
                    problem = f"cannot connect to {self._endpoint()} within {CONNECT_TIMEOUT:g}s"
                    self._count_failure(problem)
                else:
                    # Not retried: a server that serves one request at a time is still working
                    # on this one, and a resent prompt would only queue behind it.
                    problem = f"no answer within {self._timeout:g}s (not retried)"
                    self._count_failure(problem)
                    raise LLMUnavailable(
                        f"LLM endpoint {self._endpoint()}: {problem}; raise llm.timeout if the "
                        "model needs longer"
                    ) from None
                wait_hint = None
            except openai.APIConnectionError as exc:
                self._error()
                reason = self.redact(str(exc.__cause__ or exc))[:200]
                problem, wait_hint = f"cannot connect to {self._endpoint()} ({reason})", None
                self._count_failure(problem)
            except (openai.OpenAIError, ValueError) as exc:
                # A 200 whose body is not a chat completion (an HTML proxy page, say).
                self._error()
                raise LLMBadOutput(self.redact(f"unreadable response: {exc}")[:300]) from None
            else:
                with self._lock:
                    self._failures_in_a_row = 0
                self._record_tokens(completion, key)
                return completion
            attempt += 1
            if attempt >= attempts:
                raise LLMUnavailable(
                    f"LLM endpoint {self._endpoint()} failed {attempts} time(s), last: {problem}"
                )
            delay = self._delay(attempt, wait_hint)
            log.warning("LLM request failed (%s); retry %d in %.2fs", problem, attempt, delay)
            time.sleep(delay)

    def _error(self) -> None:
        with self.usage.lock:
            self.usage.errors += 1

    def _count_failure(self, problem: str) -> None:
        """One more connection failure or timeout; opens the breaker (``LLMCircuitOpen``)."""
        with self._lock:
            if self._breaker:  # another thread's failure opened it meanwhile
                raise LLMCircuitOpen(self._breaker)
            self._failures_in_a_row += 1
            limit = self.settings.breaker_failures
            if self._failures_in_a_row < limit:
                return
            self._breaker = (
                f"LLM calls stopped for the rest of this run after {limit} consecutive "
                f"connection failures or timeouts (last: {problem}); check llm.base_url and "
                "that the server runs"
            )
            log.warning("%s", self._breaker)  # once: later calls raise without a word
            raise LLMCircuitOpen(self._breaker)

    def _format_rejected(self, status: int, detail: str, ask: _Ask, params: dict[str, Any]) -> bool:
        """Under "auto", a rejection of the structured-output mode: step down FORMAT_MODES,
        say so once, and remember it for the run (True: resend).

        A rejection is a 4xx other than auth, a wrong URL or busy (400, 422...), or a 5xx whose
        message is about the format (llama.cpp's 500 to json_schema); a bare 5xx is an outage.
        """
        sent = _format_of(params)
        if not self._auto_format or ask.schema is None or sent == "prompt":
            return False
        if status in _NOT_ABOUT_FORMAT:
            return False
        about_format = any(word in detail.lower() for word in _FORMAT_WORDS)
        if status >= 500 and not about_format:
            return False
        with self._lock:
            if self._format != sent:
                return True  # another thread's request stepped down already
            self._format = FORMAT_MODES[FORMAT_MODES.index(sent) + 1]
            log.warning(
                "LLM server rejected structured output %r (HTTP %d: %s); using %r for the rest "
                "of this run (set llm.structured_output to skip the test)",
                sent,
                status,
                detail[:120],
                self._format,
            )
        return True

    def _request(self, ask: _Ask) -> dict[str, Any]:
        with self._lock:
            dropped = set(self._dropped)
            mode = self._format
        system = ask.system
        if ask.schema is not None and mode == "prompt":
            system += "\n\nThe JSON object must follow this JSON Schema:\n" + json.dumps(
                ask.schema, separators=(",", ":")
            )
        messages = [{"role": "system", "content": system}, {"role": "user", "content": ask.user}]
        params: dict[str, Any] = {"model": self.model, "messages": messages}
        if "response_format" not in dropped and mode != "prompt":
            params["response_format"] = _response_format(mode, ask)
        if "temperature" not in dropped:
            params["temperature"] = (
                self.settings.temperature if ask.temperature is None else ask.temperature
            )
        # Newer OpenAI models refuse max_tokens and want max_completion_tokens instead.
        tokens_key = "max_completion_tokens" if "max_tokens" in dropped else "max_tokens"
        params[tokens_key] = ask.max_tokens or self.settings.max_tokens
        return params

    def _adapt_to(self, detail: str, sent: dict[str, Any]) -> bool:
        """A 400 naming a parameter this request sent: drop it for good, say so once (True:
        resend). Another thread may have dropped it meanwhile; this request still had it."""
        lowered = detail.lower()
        with self._lock:
            for name in ("response_format", "max_tokens", "temperature"):
                if name in lowered and name in sent:
                    if name not in self._dropped:
                        self._dropped.add(name)
                        log.info("LLM server rejected %r; resending without it", name)
                    return True
        return False

    def _spend_call(self, purpose: str) -> tuple[str, str]:
        """Take one call of the budgets, or raise why not; the ledger key it is filed under."""
        with self._lock, self.usage.lock:
            if self._breaker:
                raise LLMCircuitOpen(self._breaker)
            if self.usage.calls >= self.settings.max_calls_per_run:
                raise LLMBudgetExceeded(
                    f"per-run LLM budget of {self.settings.max_calls_per_run} call(s) is used "
                    "up (raise llm.max_calls_per_run to allow more)"
                )
            day = self.today()
            problem = self._daily_problem(day)
            if problem:
                if not self._daily_said:
                    self._daily_said = True
                    log.warning("%s", problem)  # once: the stories after it say it in their note
                raise LLMDailyBudgetExceeded(problem)
            self.usage.calls += 1
            key = (day, purpose)
            self.usage.ledger.setdefault(key, Spent()).calls += 1
            return key

    def _daily_problem(self, day: str) -> str:
        """Why the day's budget allows no further call ("" when it does)."""
        calls_before, tokens_before = self._spent_before.get(day, (0, 0))
        mine = [s for (d, _), s in self.usage.ledger.items() if d == day]
        calls = calls_before + sum(s.calls for s in mine)
        tokens = tokens_before + sum(s.tokens for s in mine)
        limit = self.settings.daily_budget_calls
        if limit is not None and calls >= limit:
            return (
                f"daily LLM budget of {limit} call(s) is used up for {day} ({calls} made); "
                "extractive summaries until the day ends (raise llm.daily_budget_calls to "
                "allow more)"
            )
        limit = self.settings.daily_budget_tokens
        if limit is not None and tokens >= limit:
            return (
                f"daily LLM budget of {limit} token(s) is used up for {day} ({tokens} spent); "
                "extractive summaries until the day ends (raise llm.daily_budget_tokens to "
                "allow more)"
            )
        return ""

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before retry number ``attempt``: the server's wish, else jittered backoff."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self._retry_after_cap)
        backoff = min(self._backoff_cap, self._backoff_base * 2.0 ** (attempt - 1))
        return backoff * random.uniform(0.75, 1.0)  # jitter: clients do not retry in lockstep

    def _record_tokens(self, completion: Any, key: tuple[str, str]) -> None:
        usage = getattr(completion, "usage", None)
        if usage is None:
            return
        prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        answer = int(getattr(usage, "completion_tokens", 0) or 0)
        with self.usage.lock:
            self.usage.prompt_tokens += prompt
            self.usage.completion_tokens += answer
            spent = self.usage.ledger.setdefault(key, Spent())
            spent.prompt_tokens += prompt
            spent.completion_tokens += answer

    def _endpoint(self) -> str:
        return self.redact(str(self._openai.base_url))

    def _server_message(self, exc: openai.APIStatusError) -> str:
        body = exc.body
        if isinstance(body, dict):
            error = body.get("error", body)
            message = error.get("message") if isinstance(error, dict) else error
            text = str(message if message is not None else body)
        else:
            text = str(body) if body is not None else exc.response.reason_phrase
        return self.redact(" ".join(text.split()))[:300]

    def _rejected_message(self, status: int, detail: str) -> str:
        hint = {
            401: "check the API key (llm.api_key or OPENAI_API_KEY)",
            403: "the key is not allowed to use this model or endpoint",
            404: f"check llm.base_url ({self._endpoint()}) and llm.model ({self.model})",
        }.get(status, "the request was refused")
        return f"LLM endpoint refused the request with HTTP {status}: {detail} ({hint})"


@dataclass(frozen=True)
class _Ask:
    """One question: the messages' text and the JSON Schema the answer must follow."""

    system: str
    user: str
    schema: dict[str, Any] | None  # None: any JSON object
    name: str  # the schema's name (json_schema mode wants one)
    max_tokens: int | None = None  # the answer's cap; None: settings.max_tokens
    temperature: float | None = None  # None: settings.temperature


def _format_of(params: dict[str, Any]) -> str:
    """The structured-output mode a request was sent in."""
    kind = params.get("response_format", {}).get("type")
    return "json_schema" if kind == "json_schema" else "json_object" if kind else "prompt"


def _response_format(mode: str, ask: _Ask) -> dict[str, Any]:
    """The ``response_format`` parameter of ``mode`` (json_schema or json_object)."""
    if ask.schema is None:
        return {"type": "json_object"}
    if mode == "json_schema":
        schema = without_sizes(ask.schema)
        return {
            "type": "json_schema",
            "json_schema": {"name": ask.name, "schema": schema, "strict": True},
        }
    return {"type": "json_object", "schema": ask.schema}  # llama.cpp: enforced by grammar


# Size and range keywords: a grammar (llama.cpp) holds a small model to them, but strict
# json_schema servers refuse some of them (OpenAI's strict mode has refused minLength and
# maxLength). They are sent in json_object and prompt modes and the gates check them anyway.
SIZE_KEYWORDS = frozenset({"minItems", "maxItems", "minLength", "maxLength", "minimum", "maximum"})


def without_sizes(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with every size and range keyword removed, at any depth (the names under
    ``properties`` are fields, kept whatever they are called)."""
    kept: dict[str, Any] = {}
    for key, value in schema.items():
        if key in SIZE_KEYWORDS:
            continue
        if key == "properties" and isinstance(value, dict):
            value = {name: without_sizes(field) for name, field in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            value = without_sizes(value)
        elif key in ("anyOf", "oneOf", "allOf") and isinstance(value, list):
            value = [without_sizes(v) if isinstance(v, dict) else v for v in value]
        kept[key] = value
    return kept


def usage_cost(
    prices: dict[str, ModelPrice], model: str, prompt_tokens: int, completion_tokens: int
) -> float | None:
    """What the tokens cost at ``prices[model]``; None when the model has no price."""
    price = prices.get(model)
    if price is None:
        return None
    return (
        prompt_tokens * price.input_per_million + completion_tokens * price.output_per_million
    ) / 1_000_000


def _new_run_id() -> str:
    return uuid.uuid4().hex[:16]


def _base_url_problem(base_url: str | None) -> str:
    """Why ``base_url`` cannot work ("" when it can, or when unset: the OpenAI default)."""
    if base_url is None or http_url(base_url):
        return ""
    try:
        urlsplit(base_url).port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return f"llm.base_url {base_url!r} is not a valid URL"
    return (
        f"llm.base_url {base_url!r} must be an http:// or https:// URL, "
        "e.g. http://127.0.0.1:11434/v1"
    )


def _retryable(status: int) -> bool:
    return status in RETRYABLE_STATUS or status >= 500


def _retry_after(response: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date); None if absent."""
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return float(millis) / 1000
        except ValueError:
            pass
    return retry_after_seconds(headers.get("retry-after"))  # None: the caller's own backoff


def _answer_object(completion: Any) -> dict[str, Any]:
    """The JSON object in the first choice, or ``LLMBadOutput`` saying what was wrong."""
    choices = getattr(completion, "choices", None) or []
    if not choices:
        raise LLMBadOutput("the answer has no choices")
    choice = choices[0]
    message = getattr(choice, "message", None)
    if getattr(message, "refusal", None):
        raise LLMBadOutput("the model refused to answer")
    content = getattr(message, "content", None)
    content = content if isinstance(content, str) else ""
    if getattr(choice, "finish_reason", None) == "length":
        raise LLMBadOutput("the answer was cut off at max_tokens (truncated JSON)")
    if not content.strip():
        raise LLMBadOutput("the answer is empty")
    return extract_json_object(content)


def extract_json_object(text: str) -> dict[str, Any]:
    """The first complete JSON object in text, ignoring prose and ``` fences around it."""
    cleaned = _FENCE.sub("\n", text)
    start = cleaned.find("{")
    if start < 0:
        raise LLMBadOutput("the answer contains no JSON object")
    while start >= 0:
        end = _balanced_end(cleaned, start)
        if end is None:
            raise LLMBadOutput("the answer's JSON object is incomplete (truncated)")
        try:
            value = json.loads(cleaned[start:end])
        except json.JSONDecodeError:
            value = None  # braces in prose, e.g. "{like this}": look further on
        if isinstance(value, dict):
            return value
        # Skip the whole span: an object nested inside a broken one is not the answer.
        start = cleaned.find("{", end)
    raise LLMBadOutput("the answer contains no valid JSON object")


def _balanced_end(text: str, start: int) -> int | None:
    """Index just past the brace closing ``text[start]``, honouring JSON strings; None if open."""
    depth, in_string, escaped = 0, False, False
    for index in range(start, len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index + 1
    return None
