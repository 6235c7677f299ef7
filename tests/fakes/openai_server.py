"""A local HTTP server that speaks OpenAI's chat-completions and models API.

It stands in for api.openai.com (no internet here) and follows the documented
shapes: `POST /v1/chat/completions` answers a `chat.completion` object with
`choices[].message.content`, `finish_reason` and `usage`; `GET /v1/models` a
`list` of `model` objects; errors are `{"error": {"message", "type", "param",
"code"}}` with the real status codes (401 `invalid_api_key`, 404
`model_not_found`, 429 `rate_limit_exceeded` / `insufficient_quota` with a
`retry-after` header, 500 `server_error`). A request without the expected
`Authorization: Bearer <key>` gets a 401 whatever the script says, as the real
API does.

Tests script the next responses of `/v1/chat/completions` (`server.queue(...)`):
`Reply`, `RateLimited`, `Unauthorized`, `ServerError`, `Slow`, `Malformed`. When
the queue is empty the `default` behaviour answers. Every request is recorded
(`server.requests`) so a test can assert what was sent, or that nothing was.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_KEY = "sk-test-ai-trader-0123456789abcdefWXYZ"
DEFAULT_MODEL = "gpt-4o-mini"
MODEL_SNAPSHOT = "gpt-4o-mini-2024-07-18"
CREATED = 1_721_172_741


@dataclass(frozen=True)
class Recorded:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None

    @property
    def prompt(self) -> str:
        """Every message content of a chat request, joined."""
        messages = (self.body or {}).get("messages", [])
        return "\n".join(str(m.get("content", "")) for m in messages)


TextSource = str | Callable[[Recorded], str]


@dataclass(frozen=True)
class Reply:
    """200 with a chat completion whose content is `text` (or `text(request)`)."""

    text: TextSource
    finish_reason: str | None = None  # None: "stop", or "length" when max_tokens cut it


@dataclass(frozen=True)
class RateLimited:
    """429, retryable (`rate_limit_exceeded`) or not (`insufficient_quota`).

    `retry_after` is sent as the `retry-after` header: seconds, or an HTTP date (str).
    """

    retry_after: float | str | None = 1
    retry_after_ms: int | None = None
    code: str = "rate_limit_exceeded"


@dataclass(frozen=True)
class Unauthorized:
    """401 `invalid_api_key`, as for a revoked key."""


@dataclass(frozen=True)
class ServerError:
    """500 (or another 5xx) with OpenAI's server_error body."""

    status: int = 500


@dataclass(frozen=True)
class Slow:
    """Wait `seconds` before answering with `then` (the client times out first)."""

    seconds: float
    then: Reply = field(default_factory=lambda: Reply("late answer"))


@dataclass(frozen=True)
class Malformed:
    """200, `Content-Type: application/json`, and a body that is not valid JSON."""

    body: bytes = b'{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{'


Behaviour = Reply | RateLimited | Unauthorized | ServerError | Slow | Malformed


def _tokens(text: str) -> int:
    """A rough token count (~4 characters per token), like OpenAI's rule of thumb."""
    return max(1, (len(text) + 3) // 4)


def _error(message: str, type_: str, code: str | None, param: str | None = None) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": type_, "param": param, "code": code}}
    ).encode()


def _masked(key: str) -> str:
    """How OpenAI echoes a wrong key in its 401 message: first and last characters only."""
    return key[:3] + "*" * max(0, len(key) - 7) + key[-4:] if len(key) > 8 else "***"


class FakeOpenAI:
    """The server; use as a context manager. `url` is the base URL (`.../v1`)."""

    def __init__(self, api_key: str = DEFAULT_KEY, models: tuple[str, ...] = (DEFAULT_MODEL,),
                 default: Behaviour | None = None) -> None:
        self.api_key = api_key
        self.models = models
        self.default: Behaviour = default or Reply("No explanation scripted.")
        self.requests: list[Recorded] = []
        self._script: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def url(self) -> str:
        """Base URL for `OPENAI_BASE_URL`."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def queue(self, *behaviours: Behaviour) -> None:
        """The next chat-completion responses, in order."""
        with self._lock:
            self._script.extend(behaviours)

    def chat_requests(self) -> list[Recorded]:
        """The chat-completion requests received so far."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()  # releases handlers sleeping in Slow
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------------------ responses

    def _next(self) -> Behaviour:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    def _record(self, rec: Recorded) -> None:
        with self._lock:
            self.requests.append(rec)

    def _auth_error(self, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]] | None:
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return 401, _error(
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), "
                "or as the password field (with blank username) if you're accessing the API "
                "from your browser and are prompted for a username and password. You can "
                "obtain an API key from https://platform.openai.com/account/api-keys.",
                "invalid_request_error", None), {}
        given = auth[7:].strip()
        if given != self.api_key:
            return 401, _error(
                f"Incorrect API key provided: {_masked(given)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error", "invalid_api_key"), {}
        return None

    def _models(self, path: str) -> tuple[int, bytes, dict[str, str]]:
        def model(name: str) -> dict[str, Any]:
            return {"id": name, "object": "model", "created": CREATED, "owned_by": "system"}

        rest = path.split("/v1/models", 1)[1].strip("/")
        if not rest:
            body = {"object": "list", "data": [model(m) for m in self.models]}
            return 200, json.dumps(body).encode(), {}
        if rest in self.models:
            return 200, json.dumps(model(rest)).encode(), {}
        return 404, _error(f"The model '{rest}' does not exist", "invalid_request_error",
                           "model_not_found", "model"), {}

    def _completion(self, rec: Recorded, reply: Reply) -> tuple[int, bytes, dict[str, str]]:
        body = rec.body or {}
        text = reply.text(rec) if callable(reply.text) else reply.text
        finish = reply.finish_reason or "stop"
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and _tokens(text) > limit:
            text, finish = text[: limit * 4], "length"
        prompt_tokens = _tokens(rec.prompt) + 7 * len(body.get("messages", []))
        completion_tokens = _tokens(text)
        out = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": MODEL_SNAPSHOT if body.get("model") == DEFAULT_MODEL else body.get("model"),
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None,
                            "annotations": []},
                "logprobs": None,
                "finish_reason": finish,
            }],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0,
                                              "rejected_prediction_tokens": 0},
            },
            "service_tier": "default",
            "system_fingerprint": "fp_fake0001",
        }
        return 200, json.dumps(out).encode(), {}

    def _chat(self, rec: Recorded) -> tuple[int, bytes, dict[str, str]]:
        body = rec.body
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return 400, _error("'messages' is a required property", "invalid_request_error",
                               None, "messages"), {}
        if body.get("model") not in self.models:
            return 404, _error(
                f"The model `{body.get('model')}` does not exist or you do not have access to "
                "it.", "invalid_request_error", "model_not_found"), {}
        behaviour = self._next()
        if isinstance(behaviour, Slow):
            self._closing.wait(behaviour.seconds)
            behaviour = behaviour.then
        if isinstance(behaviour, Reply):
            return self._completion(rec, behaviour)
        if isinstance(behaviour, RateLimited):
            return self._rate_limited(behaviour, body)
        if isinstance(behaviour, Unauthorized):
            return 401, _error(
                f"Incorrect API key provided: {_masked(self.api_key)}. You can find your API "
                "key at https://platform.openai.com/account/api-keys.",
                "invalid_request_error", "invalid_api_key"), {}
        if isinstance(behaviour, ServerError):
            return behaviour.status, _error(
                "The server had an error while processing your request. Sorry about that!",
                "server_error", None), {}
        return 200, behaviour.body, {}

    def _rate_limited(self, rl: RateLimited,
                      body: dict[str, Any]) -> tuple[int, bytes, dict[str, str]]:
        seconds = rl.retry_after if isinstance(rl.retry_after, int | float) else 1
        headers: dict[str, str] = {
            "x-ratelimit-limit-requests": "500",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": f"{seconds:g}s",
        }
        if isinstance(rl.retry_after, str):
            headers["retry-after"] = rl.retry_after
        elif rl.retry_after is not None:
            headers["retry-after"] = f"{rl.retry_after:g}"
        if rl.retry_after_ms is not None:
            headers["retry-after-ms"] = str(rl.retry_after_ms)
        if rl.code == "insufficient_quota":
            return 429, _error(
                "You exceeded your current quota, please check your plan and billing details. "
                "For more information on this error, read the docs: "
                "https://platform.openai.com/docs/guides/error-codes/api-errors.",
                "insufficient_quota", "insufficient_quota"), headers
        return 429, _error(
            f"Rate limit reached for {body.get('model')} in organization org-fake on requests "
            f"per min (RPM): Limit 500, Used 500, Requested 1. Please try again in "
            f"{seconds:g}s. Visit https://platform.openai.com/account/rate-limits to "
            "learn more.", "requests", "rate_limit_exceeded"), headers

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go out in two writes: without this, Nagle + delayed ACK add
            # ~40 ms per keep-alive request, a cost the real API does not have
            disable_nagle_algorithm = True

            def _read(self) -> Recorded:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                headers = {k.lower(): v for k, v in self.headers.items()}
                rec = Recorded(self.command, self.path, headers, body)
                fake._record(rec)
                return rec

            def _send(self, status: int, body: bytes, extra: dict[str, str]) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("x-request-id", f"req_{uuid.uuid4().hex}")
                    self.send_header("openai-processing-ms", "12")
                    for key, value in extra.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): as a real server, carry on

            def _route(self) -> None:
                rec = self._read()
                denied = fake._auth_error(rec.headers)
                if denied is not None:
                    self._send(*denied)
                elif self.command == "GET" and self.path.startswith("/v1/models"):
                    self._send(*fake._models(self.path))
                elif self.command == "POST" and self.path == "/v1/chat/completions":
                    self._send(*fake._chat(rec))
                else:
                    self._send(404, _error(f"Invalid URL ({self.command} {self.path})",
                                           "invalid_request_error", None), {})

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._route()

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self._route()

            def log_message(self, *args: object) -> None:
                return None

        return Handler
