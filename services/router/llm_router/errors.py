"""The router's exceptions, and how each maps to an OpenAI-shaped error body.

    RouterError
    ├── ConfigError                  invalid policy or settings (never sent to clients)
    └── RequestError                 anything answered with an HTTP error status
        ├── InvalidRequest           400: malformed JSON or schema
        ├── AuthenticationFailed     401: missing or wrong API key
        ├── NotFound                 404: unknown model or request id
        ├── PayloadTooLarge          413: body over the configured limit
        ├── RateLimited              429: per-key limits or an exhausted tier budget
        └── UpstreamError            a provider failed; the status says how
            ├── UpstreamRejected     400: the upstream refused the request as invalid
            ├── UpstreamThrottled    429 from the upstream (retryable)
            ├── UpstreamUnavailable  502: 5xx, bad response, connection refused or reset
            └── UpstreamTimeout      504: connect, first-byte or total timeout

Upstream errors carry the upstream status and, when the upstream sent one, its
`Retry-After` in seconds, so the fallback logic can decide whether to try elsewhere.
"""

from __future__ import annotations


class RouterError(Exception):
    """Base class of every error the router raises on purpose."""


class ConfigError(RouterError):
    """The policy file or the settings are invalid."""


class RequestError(RouterError):
    """An error answered to the client with an OpenAI-shaped body."""

    status_code = 500
    error_type = "server_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}

    def to_body(self) -> dict[str, object]:
        """The OpenAI error body for this error."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequest(RequestError):
    status_code = 400
    error_type = "invalid_request_error"


class AuthenticationFailed(RequestError):
    status_code = 401
    error_type = "authentication_error"


class NotFound(RequestError):
    status_code = 404
    error_type = "invalid_request_error"


class PayloadTooLarge(RequestError):
    status_code = 413
    error_type = "invalid_request_error"


class RateLimited(RequestError):
    status_code = 429
    error_type = "rate_limit_error"


class UpstreamError(RequestError):
    """A provider call failed."""

    status_code = 502
    error_type = "upstream_error"
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        upstream_status: int | None = None,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        headers = {}
        if retry_after is not None:
            headers["retry-after"] = str(max(1, round(retry_after)))
        super().__init__(message, code=code, headers=headers)
        self.upstream_status = upstream_status
        self.retry_after = retry_after

    @property
    def reason(self) -> str:
        """A short label for metrics: `timeout`, `throttled`, `http_503`, ..."""
        if self.upstream_status is not None:
            return f"http_{self.upstream_status}"
        return self.code or "unavailable"


class UpstreamRejected(UpstreamError):
    status_code = 400
    error_type = "invalid_request_error"
    retryable = False


class UpstreamThrottled(UpstreamError):
    status_code = 429
    error_type = "rate_limit_error"


class UpstreamUnavailable(UpstreamError):
    status_code = 502


class UpstreamTimeout(UpstreamError):
    status_code = 504
    error_type = "timeout_error"

    @property
    def reason(self) -> str:
        return "timeout"
