"""Every error the package raises, under one root.

``UserError`` is a problem the user fixes before anything can run (a bad sources.yaml, an
unreachable database, another run in progress): the command line prints its message, one line
per problem, and exits with 2. The other kinds are handled inside the pipeline, where one source,
page or story fails and the rest go on; they are here so callers can catch them by kind.
"""

from __future__ import annotations


class AggregatorError(Exception):
    """The root of every error this package raises on purpose."""


class UserError(AggregatorError):
    """A problem the user must fix first; its message says what and where (exit code 2)."""


class ConfigError(UserError):
    """sources.yaml is unusable; ``problems`` holds one ``file:line:col: message`` each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class StorageError(UserError):
    """The database could not be opened or written; the message says which and why."""


class DatabaseBusyError(StorageError):
    """Another process held the database's write lock for longer than the busy timeout: the
    transaction that waited wrote nothing (exit code 75, retry later)."""


class SiteWriteError(UserError):
    """The site could not be written (a full disk, no permission): the previous site stays
    live and the half-built release is removed (exit code 74, sysexits' EX_IOERR)."""


class RunLockedError(UserError):
    """Another run holds the lock: this one must not write anything (exit code 75, retry
    later)."""


class Interrupted(AggregatorError):
    """A stop was asked for (SIGTERM, SIGINT) and the run ended between two stages: the stages
    before finished and were stored, the rest did not start. The message says where."""


class DuplicateSourceError(UserError):
    """The feed is already listed; ``existing`` is the id it has."""

    def __init__(self, url: str, existing: str):
        self.url, self.existing = url, existing
        super().__init__(f"{url} is already in the file as '{existing}'")


class OpmlError(UserError):
    """The file is not OPML we can read; the message says why (with the line when known)."""


class NotAFeedError(AggregatorError):
    """The body is not a feed we can read; the message says why."""


class FetchError(AggregatorError):
    """A request failed for a reason worth telling the user; the message is that reason."""


class AddressRefusedError(AggregatorError, OSError):
    """A host has no address we may connect to; str() is why (an OSError for aiohttp)."""


class WorkerError(AggregatorError):
    """A call in a worker process ran past its deadline or crashed it; its pool was replaced."""


class LLMError(AggregatorError):
    """The LLM gave no usable answer; the message says why (never with the API key)."""


class LLMBudgetExceeded(LLMError):
    """The per-run call budget (``max_calls_per_run``) is used up."""


class LLMDailyBudgetExceeded(LLMBudgetExceeded):
    """The day's budget (``daily_budget_calls`` / ``daily_budget_tokens``) is used up."""


class LLMUnavailable(LLMError):
    """Timeouts, connection failures, 429 and 5xx that outlasted the retries."""


class LLMCircuitOpen(LLMUnavailable):
    """Consecutive connection failures or timeouts stopped LLM calls for the rest of the run."""


class LLMRequestRejected(LLMError):
    """A 4xx the server will not change its mind about (bad key, unknown model, ...)."""


class LLMBadOutput(LLMError):
    """The answer is not one JSON object: prose only, truncated, refused or empty."""
