"""An asynchronous client for any OpenAI-compatible chat-completions server (vLLM, SGLang, a hosted API).

`Teacher.sample(messages, index)` POSTs `{url}/chat/completions` once for candidate number `index` and returns a
`Candidate`. Requests run under a concurrency limit; timeouts, transport errors, 429 and 5xx are retried with
exponential backoff and jitter (a `Retry-After` header wins over the computed delay); other 4xx are not retried.
A request that never got an answer raises `NoAnswer`. A 200 whose body cannot be read is a failed candidate
(`Candidate.error`), not an exception: the server answered, and asking again would pay twice.

Thinking models return their reasoning either in `message.reasoning_content` (vLLM, SGLang, DeepSeek) or
`message.reasoning` (newer vLLM, OpenRouter), or inline as `<think>...</think>` before the answer (also when the
chat template opened the `<think>` tag itself and only `</think>` comes back). Both are split the same way.

Every 200 body goes through the cache (`traces.cache`) before it is parsed, so a killed run resumes without asking
again. The API key is read from an environment variable and only ever put in the Authorization header.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from dataset_builder.traces.cache import ResponseCache

RETRY_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}


class NoAnswer(Exception):
    """The server never answered this request (retries exhausted, or a non-retryable HTTP error)."""


@dataclass
class TeacherConfig:
    url: str  # base URL of the API, e.g. http://localhost:8000/v1 (".../chat/completions" is accepted too)
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    max_tokens: int = 16384
    temperature: float = 0.6
    top_p: float | None = None
    seed: int | None = 0  # candidate i is sampled with seed + i (reproducible on vLLM/SGLang); None: no seed sent
    timeout: float = 600.0
    concurrency: int = 8
    max_retries: int = 6
    backoff: float = 2.0  # first retry waits about this long, doubling up to backoff_max
    backoff_max: float = 120.0
    extra_body: dict[str, Any] = field(default_factory=dict)  # e.g. {"chat_template_kwargs": {"enable_thinking": True}}

    @property
    def endpoint(self) -> str:
        url = self.url.rstrip("/")
        return url if url.endswith("/chat/completions") else url + "/chat/completions"

    @property
    def host(self) -> str:
        return urlparse(self.url).hostname or ""


@dataclass
class Candidate:
    index: int
    content: str = ""  # the final answer text: what follows </think>
    reasoning: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""
    cached: bool = False
    error: str = ""  # set when the server answered but the answer is unusable

    @property
    def ok(self) -> bool:
        return not self.error


def split_thinking(content: str, reasoning: str = "") -> tuple[str, str, str]:
    """(reasoning, final text, error) from a message's content and its separate reasoning field, if any."""
    content = content or ""
    if "</think>" in content:
        head, _, tail = content.rpartition("</think>")
        inline = head.split("<think>", 1)[1] if "<think>" in head else head
        reasoning = "\n\n".join(part for part in (reasoning.strip(), inline.strip()) if part)
        content = tail
    elif "<think>" in content:
        return "", "", "reasoning never finished (<think> without </think>)"
    return reasoning.strip(), content.strip(), ""


def parse_response(body: str, index: int) -> Candidate:
    """A Candidate from a chat-completions response body; unreadable bodies give a Candidate with `error` set, whatever
    the error (bad JSON, missing fields, fields of the wrong type, nesting too deep for the parser)."""
    try:
        return _parse_response(body, index)
    except Exception as err:  # noqa: BLE001 - the server answered: a bad body is a failed candidate, never a crash
        return Candidate(index, error=f"unreadable response ({type(err).__name__}): {str(body)[:120]!r}")


def _parse_response(body: str, index: int) -> Candidate:
    candidate = Candidate(index)
    data = json.loads(body)
    message = data["choices"][0]["message"]
    if not isinstance(message, dict):
        candidate.error = "unreadable response: choices[0].message is not an object"
        return candidate
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    candidate.prompt_tokens = _count(usage.get("prompt_tokens"))
    candidate.completion_tokens = _count(usage.get("completion_tokens"))
    candidate.finish_reason = str(data["choices"][0].get("finish_reason") or "")
    content = message.get("content")
    if isinstance(content, list):  # content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    separate = message.get("reasoning_content") or message.get("reasoning") or ""
    reasoning, final, error = split_thinking(content if isinstance(content, str) else "", str(separate))
    candidate.reasoning, candidate.content, candidate.error = reasoning, final, error
    if not error and not final:
        candidate.error = f"no final answer (finish_reason={candidate.finish_reason or 'unknown'})"
    return candidate


def _count(value: Any) -> int:
    """A usage count, 0 when the server sent something that is not one (the answer itself may still be fine)."""
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError, OverflowError):
        return 0


def request_key(config: TeacherConfig, messages: list[dict[str, str]]) -> str:
    """sha256 of exactly what decides the sampled text, apart from the candidate index (the cache's prompt hash)."""
    payload = {
        "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
        "max_tokens": config.max_tokens,
        "temperature": config.temperature,
        "top_p": config.top_p,
        "seed": config.seed,
        "extra_body": config.extra_body,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Teacher:
    """Use as `async with Teacher(config, cache) as teacher: await teacher.sample(messages, i)`."""

    def __init__(self, config: TeacherConfig, cache: ResponseCache | None = None):
        self.config = config
        self.cache = cache
        self.requests_sent = 0
        self.retries = 0
        self._semaphore = asyncio.Semaphore(max(1, config.concurrency))
        self._client = None

    async def __aenter__(self) -> Teacher:
        import httpx

        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.config.api_key_env, "")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        limits = httpx.Limits(max_connections=max(1, self.config.concurrency))
        self._client = httpx.AsyncClient(headers=headers, timeout=self.config.timeout, limits=limits)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._client.aclose()

    def body(self, messages: list[dict[str, str]], index: int) -> dict[str, Any]:
        config = self.config
        body: dict[str, Any] = {
            **config.extra_body,
            "model": config.model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "max_tokens": config.max_tokens,
            "temperature": config.temperature,
        }
        if config.top_p is not None:
            body["top_p"] = config.top_p
        if config.seed is not None:
            body["seed"] = config.seed + index
        return body

    async def sample(self, messages: list[dict[str, str]], index: int, record_id: str = "") -> Candidate:
        """Candidate `index` for `messages`: from the cache, else from the server. Raises NoAnswer."""
        key = request_key(self.config, messages)
        if self.cache is not None:
            hit = self.cache.get(self.config.model, key, index)
            if hit is not None:
                candidate = parse_response(hit, index)
                candidate.cached = True
                return candidate
        body = await self._post(self.body(messages, index))
        if self.cache is not None:
            self.cache.put(self.config.model, key, index, body, record_id=record_id)
        return parse_response(body, index)

    async def _post(self, body: dict[str, Any]) -> str:
        import httpx

        config, last = self.config, ""
        for attempt in range(config.max_retries + 1):
            wait = None
            async with self._semaphore:
                self.requests_sent += 1
                try:
                    response = await self._client.post(config.endpoint, json=body)
                except httpx.TimeoutException:
                    last = f"timed out after {config.timeout:g}s"
                except httpx.HTTPError as err:  # transport errors, bad encodings, redirect loops
                    last = f"{type(err).__name__}: {err}"
                else:
                    if response.status_code == 200:
                        return response.text
                    last = f"HTTP {response.status_code}: {response.text[:200]}"
                    if response.status_code not in RETRY_STATUSES:
                        raise NoAnswer(last)
                    wait = _retry_after(response.headers.get("retry-after"))
            if attempt == config.max_retries:
                break
            if wait is None:
                delay = min(config.backoff_max, config.backoff * 2**attempt)
                wait = delay / 2 + random.uniform(0, delay / 2)
            self.retries += 1
            await asyncio.sleep(min(wait, config.backoff_max))
        raise NoAnswer(f"no answer after {config.max_retries + 1} attempts; last: {last}")
