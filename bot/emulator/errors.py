"""Bot API error values raised by emulator method handlers.

Every failure the real Bot API can return is a JSON body
``{"ok": false, "error_code": N, "description": "...", "parameters": {...}}``
with the same HTTP status. Handlers raise :class:`ApiError` and the server turns
it into exactly that shape, so python-telegram-bot maps it to the same exception
class (``BadRequest``, ``Forbidden``, ``RetryAfter`` ...) it would get from Telegram.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A Bot API error answer: HTTP status, description and optional parameters."""

    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def body(self) -> dict[str, Any]:
        """The JSON body Telegram sends for this error."""
        out: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            out["parameters"] = self.parameters
        return out


def bad_request(what: str) -> ApiError:
    """400 with the ``Bad Request: `` prefix the real server puts on every 400."""
    return ApiError(400, f"Bad Request: {what}")


def forbidden(what: str) -> ApiError:
    """403 with the ``Forbidden: `` prefix (blocked, deactivated, kicked ...)."""
    return ApiError(403, f"Forbidden: {what}")


def too_many_requests(retry_after: int) -> ApiError:
    """429 flood-control answer; ``retry_after`` is whole seconds and at least 1."""
    retry_after = max(1, int(retry_after))
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})


def conflict(what: str) -> ApiError:
    """409, used by getUpdates while a webhook is set or another poller took over."""
    return ApiError(409, f"Conflict: {what}")


CHAT_NOT_FOUND = "chat not found"
