"""§6.7 test connection: one cheap authenticated call (`GET /models`) to the configured
OpenAI-compatible endpoint, answered in words a user understands, never a raw HTTP code.
"""

from __future__ import annotations

import logging

import openai

from api.models import AiTestOut

log = logging.getLogger("ai_trader.api.openai")

DEFAULT_BASE_URL = "https://api.openai.com/v1"


async def test_connection(api_key: str | None, base_url: str | None, seconds: float) -> AiTestOut:
    """Try the key against `base_url`; one attempt, no retries, bounded by `seconds`."""
    if not api_key:
        return AiTestOut(status="error", message="OpenAI API key not configured")
    client = openai.AsyncOpenAI(api_key=api_key, base_url=base_url or DEFAULT_BASE_URL,
                                timeout=seconds, max_retries=0)
    try:
        await client.models.list()
    except (openai.AuthenticationError, openai.PermissionDeniedError):
        return AiTestOut(status="error", message="Invalid OpenAI API key")
    except openai.APIConnectionError as exc:  # includes APITimeoutError
        log.warning("AI endpoint unreachable: %s", type(exc).__name__)
        return AiTestOut(status="error", message="AI endpoint unreachable")
    except openai.RateLimitError:
        return AiTestOut(status="error", message="AI endpoint is rate limiting this key or "
                                                 "its quota is used up")
    except openai.NotFoundError:
        return AiTestOut(status="error", message="AI endpoint not found: check OPENAI_BASE_URL")
    except openai.APIStatusError as exc:
        log.warning("AI endpoint answered an error status %s", exc.status_code)
        return AiTestOut(status="error", message="AI endpoint unavailable")
    except openai.OpenAIError as exc:
        log.warning("AI endpoint check failed: %s", type(exc).__name__)
        return AiTestOut(status="error", message="AI endpoint unreachable")
    finally:
        await client.close()
    return AiTestOut(status="ok", message="AI online")
