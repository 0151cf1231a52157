"""The error a request gets: an HTTP status, one line, and headers (Retry-After). Raised
by every part of the service; the HTTP application turns it into `{"error": "<line>"}`."""
from __future__ import annotations


class RequestError(Exception):
    """What a request did wrong, or why it cannot be served now."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}
