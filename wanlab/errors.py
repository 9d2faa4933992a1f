"""wanlab's exceptions. Messages say what was wrong and what would be right; none carries the API key."""

from __future__ import annotations


class WanlabError(Exception):
    """Base of every error wanlab raises on purpose."""


class ValidationError(WanlabError, ValueError):
    """A request that would be refused (or silently mis-rendered) by the host, caught before any request
    leaves the machine."""


class CatalogError(ValidationError):
    """An unknown, stale or other-host model ID, or a mode/region the catalog has no model for."""


class ConfigError(WanlabError, ValueError):
    """A Lab set up in a way that cannot work (unknown region, missing key for an explicit host …)."""


class ApiError(WanlabError):
    """A non-success answer from a host, parsed into its code and message."""

    def __init__(
        self,
        message: str,
        *,
        host: str = "",
        status: int = 0,
        code: str = "",
        request_id: str = "",
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.host = host
        self.status = status
        self.code = code
        self.request_id = request_id
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500

    def __str__(self) -> str:
        head = f"{self.host} HTTP {self.status}" if self.status else self.host
        code = f" {self.code}" if self.code else ""
        rid = f" (request_id {self.request_id})" if self.request_id else ""
        return f"{head}{code}: {self.args[0]}{rid}"


class AuthError(ApiError):
    """401/403: the key is wrong, of another region, or has no access to the model."""


class RateLimited(ApiError):
    """429: over the host's request-rate or quota limit."""


class NotFound(ApiError):
    """404: unknown model path or task."""


class ServerError(ApiError):
    """5xx from the host."""


class UnconfirmedSubmit(WanlabError):
    """A submit left the machine but no answer came back, and reconciliation could not tell whether
    the host created a task. Not re-sent (it may be a paid task); the fingerprint identifies the body."""

    def __init__(self, message: str, fingerprint: str):
        super().__init__(message)
        self.fingerprint = fingerprint


class LostContact(WanlabError):
    """Retries ran out on a call that is safe to repeat (a poll, a download): the host may still be
    working. The task stays in the log, unfinished, for `lab.resume()`."""


class DownloadError(WanlabError):
    """The result video could not be fetched or failed verification (length, MP4 probe)."""


class JobFailed(WanlabError):
    """The host reported the task FAILED (code and message from the host), or it ended UNKNOWN."""

    def __init__(self, message: str, code: str = "", status: str = "FAILED"):
        super().__init__(message)
        self.code = code
        self.status = status


class JobCanceled(WanlabError):
    """The job was cancelled (locally, or on the host)."""
