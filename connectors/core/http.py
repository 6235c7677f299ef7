"""One HTTP GET for the polling feeds (httpx, timeouts, a clear error on a bad status)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

USER_AGENT = "ai-trader/0.1 (+feeds)"


class FetchError(RuntimeError):
    """The source did not answer with a usable body (the runner backs off)."""


@dataclass(frozen=True)
class Fetched:
    """A response body with its content type."""

    url: str
    body: bytes
    content_type: str


class HttpFetcher:
    """GETs with a timeout; reuses one connection pool."""

    def __init__(self, timeout: float = 15.0) -> None:
        self._client = httpx.Client(timeout=timeout, follow_redirects=True,
                                    headers={"User-Agent": USER_AGENT})

    def get(self, url: str) -> Fetched:
        """The body of `url`, or `FetchError` (network error or a status >= 400)."""
        try:
            response = self._client.get(url)
        except httpx.HTTPError as exc:
            raise FetchError(f"GET {url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise FetchError(f"GET {url}: HTTP {response.status_code}")
        return Fetched(url, response.content, response.headers.get("content-type", ""))

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
