"""A fake model server on 127.0.0.1 speaking the OpenAI and Anthropic HTTP wire protocols.

``POST /v1/chat/completions`` answers like OpenAI (or any compatible server) and
``POST /v1/messages`` like Anthropic, with realistic JSON bodies, usage and error shapes, so the
real ``openai`` and ``anthropic`` SDK clients can be driven against it. Tests script the next
replies per API (:class:`Reply`, :class:`Fail`, :class:`Hang`, :class:`Drop`, :class:`Trickle`,
:class:`Raw`); when the script
is empty the server answers by its :class:`FailureMix`: after ``latency_s``, a 500 with
probability ``fail_rate``, a reply with no usable diff with probability ``garbage_rate``, and
otherwise a valid SEARCH/REPLACE edit of the parent program found in the prompt: made by the
offline mutator, or with ``edits="constant"`` a nudge of one decimal literal in the EVOLVE block
(next to no CPU: a throughput benchmark's stand-in for a model running on other machines).
Every request is recorded, and the server counts requests in flight per API.

Hand-rolled on :mod:`asyncio` streams (HTTP/1.1 with keep-alive, ``Content-Length`` bodies) so it
needs no dependency. Run it standalone for benchmarks::

    python -m evolve.testing.wire_server --port 0 --latency 0.5 --fail-rate 0.2 --garbage-rate 0.2

which prints the port it listens on, then serves until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from evolve.llm.offline import OfflineMutator
from evolve.records import LLMRequest

__all__ = [
    "Drop",
    "Fail",
    "FailureMix",
    "Hang",
    "Malformed",
    "Raw",
    "Reply",
    "SeenRequest",
    "Trickle",
    "WireServer",
    "serve_in_thread",
]

Api = Literal["openai", "anthropic"]
FailKind = Literal[
    "rate_limit", "server", "overloaded", "auth", "not_found", "bad_request", "context_length"
]

ROUTES: dict[str, Api] = {"/v1/chat/completions": "openai", "/v1/messages": "anthropic"}
GARBAGE_TEXT = (
    "I considered several ways to improve this program. The main idea is to tune the "
    "constants and to restructure the loop, but I am not sure which is best, so I will "
    "leave the code as it is for now."
)
_NO_PROGRAM_TEXT = "I could not find a program in your message, so I have nothing to edit."
_NO_CONSTANT_TEXT = "The program's EVOLVE block has no decimal constant for me to change."
_FENCE_RE = re.compile(r"```(?:python|py|python3)[^\n]*\n(.*?)```", re.S)
_STATUS_TEXT = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    529: "Overloaded",
}


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful completion. ``text=None`` generates an edit of the parent program."""

    text: str | None = None
    delay_s: float = 0.0
    empty: bool = False  # reply with no text at all (content null / no text block)


@dataclass(frozen=True, slots=True)
class Fail:
    """An error response in the API's real error shape."""

    kind: FailKind
    retry_after_s: float | None = None
    delay_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Hang:
    """Accept the request and never answer it (for ``seconds``), then close the connection."""

    seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class Malformed:
    """A 200 response whose JSON is not a completion (as from a misconfigured proxy)."""


@dataclass(frozen=True, slots=True)
class Drop:
    """Read the request, then drop the connection without a response."""


@dataclass(frozen=True, slots=True)
class Trickle:
    """A valid completion (of ``text``, or an edit of the parent) sent one byte every
    ``interval_s``: a server that is never idle long enough for an idle timeout to fire."""

    interval_s: float = 0.1
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Raw:
    """A response of exactly these bytes and status (garbage or truncated JSON, an HTML page)."""

    body: bytes
    status: int = 200
    content_type: str = "application/json"


Step = Reply | Fail | Hang | Drop | Malformed | Trickle | Raw


@dataclass(frozen=True, slots=True)
class FailureMix:
    """How unscripted requests are answered: latency and the odds of each failure."""

    latency_s: float = 0.0
    fail_rate: float = 0.0
    garbage_rate: float = 0.0
    seed: int = 0
    edits: Literal["mutator", "constant"] = "mutator"


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """One request the server received."""

    api: Api
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class _Counters:
    in_flight: dict[str, int] = field(default_factory=lambda: {"openai": 0, "anthropic": 0})
    max_in_flight: dict[str, int] = field(default_factory=lambda: {"openai": 0, "anthropic": 0})
    failures: dict[tuple[str, str], int] = field(default_factory=dict)  # (api, kind) -> answered


def _tokens(text: str) -> int:
    """A rough token count (four characters a token), never zero for non-empty text."""
    return max(1, len(text) // 4) if text else 0


def _text_of(content: Any) -> str:
    """The text of a message content: a string, or a list of text parts/blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


_DECIMAL_RE = re.compile(r"(?<![\w.])\d+\.\d+")


def constant_edit(code: str, rng: random.Random) -> str | None:
    """A SEARCH/REPLACE reply that nudges one decimal literal inside the EVOLVE block (a new
    value each time, so no two children are the same program); None if the block has none."""
    start = code.find("EVOLVE-BLOCK-START")
    end = code.find("EVOLVE-BLOCK-END", start)
    if start < 0 or end < 0:
        return None
    lines = code[start:end].splitlines(keepends=True)[1:]
    found = [(line, m) for line in lines for m in _DECIMAL_RE.finditer(line)]
    if not found:
        return None
    line, m = found[rng.randrange(len(found))]
    value = float(m.group()) + rng.gauss(0.0, 0.1)
    new = f"{line[: m.start()]}{value!r}{line[m.end() :]}"
    return f"<<<<<<< SEARCH\n{line}=======\n{new}>>>>>>> REPLACE\n"


def parent_program(prompt: str) -> str | None:
    """The parent program in a prompt: the fence after evolve's "## Current program" heading,
    else the first python fence holding an EVOLVE-BLOCK, else the first python fence, else None."""
    marker = prompt.find("## Current program")
    if marker >= 0 and (current := _FENCE_RE.search(prompt, marker)) is not None:
        return str(current.group(1))
    fences = _FENCE_RE.findall(prompt)
    for code in fences:
        if "EVOLVE-BLOCK-START" in code:
            return str(code)
    return str(fences[0]) if fences else None


class WireServer:
    """The fake server. Use as ``async with WireServer() as server:``; ``port`` is then bound.

    Args:
        mix: how unscripted requests are answered.
        port: 0 picks a free port.
    """

    host = "127.0.0.1"

    def __init__(self, mix: FailureMix | None = None, *, port: int = 0) -> None:
        self.mix = mix or FailureMix()
        self.requests: list[SeenRequest] = []
        self._wanted_port = port
        self._port: int | None = None
        self._scripts: dict[str, deque[Step]] = {"openai": deque(), "anthropic": deque()}
        self._counters = _Counters()
        self._rng = random.Random(self.mix.seed)
        self._mutator = OfflineMutator(seed=self.mix.seed, max_edits=1)
        self._serial = itertools.count(1)
        self._cached_systems: set[str] = set()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._closing: asyncio.Event | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> WireServer:
        self._closing = asyncio.Event()
        self._server = await asyncio.start_server(self._handle, self.host, self._wanted_port)
        self._port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        if self._closing is not None:
            self._closing.set()  # wakes hanging and delayed answers, which then end
        for writer in list(self._writers):
            writer.transport.abort()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> WireServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the server is not started")
        return self._port

    @property
    def openai_base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- scripting and inspection ----------------------------------------------------------

    def script(self, api: Api, *steps: Step) -> None:
        """Queue how the next requests to ``api`` are answered, in order."""
        self._scripts[api].extend(steps)

    def seen(self, api: Api) -> list[SeenRequest]:
        """The requests received on ``api``, oldest first."""
        return [r for r in self.requests if r.api == api]

    def failures_sent(self, api: Api, kind: str) -> int:
        """How many error replies of ``kind`` (a :class:`Fail` kind) went out on ``api``."""
        return self._counters.failures.get((api, kind), 0)

    def max_in_flight(self, api: Api) -> int:
        """The most requests to ``api`` that were open at once."""
        return self._counters.max_in_flight[api]

    # -- HTTP ------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self._writers.add(writer)
        try:
            while await self._serve_one(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.transport.abort()
            self._writers.discard(writer)
            if task is not None:
                self._handlers.discard(task)

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; return whether the connection stays open."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = [*lines[0].split(" "), "", ""][:3]
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
        path = path.split("?", 1)[0]
        api = ROUTES.get(path)
        if method == "GET" and path in ("/health", "/v1/models"):
            await self._write(writer, 200, {"object": "list", "data": []})
            return True
        if method != "POST" or api is None:
            await self._write(writer, 404, {"error": {"message": f"no route {method} {path}"}})
            return True
        try:
            payload = json.loads(body or b"{}")
        except json.JSONDecodeError:
            payload = {}
        self.requests.append(SeenRequest(api, path, headers, payload))
        counters = self._counters
        counters.in_flight[api] += 1
        counters.max_in_flight[api] = max(counters.max_in_flight[api], counters.in_flight[api])
        try:
            return await self._answer(api, payload, writer)
        finally:
            counters.in_flight[api] -= 1

    async def _answer(
        self, api: Api, payload: dict[str, Any], writer: asyncio.StreamWriter
    ) -> bool:
        step = self._next_step(api)
        if isinstance(step, Drop):
            return False
        if isinstance(step, Hang):
            await self._pause(step.seconds)
            return False
        if isinstance(step, Malformed):
            await self._write(writer, 200, {"detail": "upstream unavailable"})
            return True
        if isinstance(step, Raw):
            await self._send(writer, step.status, step.body, {"content-type": step.content_type})
            return True
        if isinstance(step, Trickle):
            body = self._completion(api, payload, Reply(step.text))
            return await self._trickle(writer, json.dumps(body).encode(), step.interval_s)
        if not await self._pause(step.delay_s):
            return False
        if isinstance(step, Fail):
            status, body, headers = _error(api, step, str(payload.get("model", "")))
            failures = self._counters.failures
            failures[api, step.kind] = failures.get((api, step.kind), 0) + 1
            await self._write(writer, status, body, headers)
            return True
        await self._write(writer, 200, self._completion(api, payload, step))
        return True

    async def _pause(self, seconds: float) -> bool:
        """Wait ``seconds``, or less if the server closes; return whether it is still open."""
        if self._closing is None or self._closing.is_set():
            return False
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), seconds)
        return not self._closing.is_set()

    def _next_step(self, api: Api) -> Step:
        script = self._scripts[api]
        if script:
            return script.popleft()
        draw = self._rng.random()
        if draw < self.mix.fail_rate:
            return Fail("server", delay_s=self.mix.latency_s)
        if draw < self.mix.fail_rate + self.mix.garbage_rate:
            return Reply(GARBAGE_TEXT, delay_s=self.mix.latency_s)
        return Reply(delay_s=self.mix.latency_s)

    async def _write(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> None:
        await self._send(writer, status, json.dumps(body).encode(), headers)

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        data: bytes,
        headers: dict[str, str] | None = None,
    ) -> None:
        writer.write(self._head(status, len(data), headers) + data)
        await writer.drain()

    def _head(self, status: int, length: int, headers: dict[str, str] | None) -> bytes:
        head = [f"HTTP/1.1 {status} {_STATUS_TEXT.get(status, 'Error')}"]
        all_headers = {
            "content-type": "application/json",
            "content-length": str(length),
            "x-request-id": f"req_{next(self._serial)}",
            **(headers or {}),
        }
        head += [f"{k}: {v}" for k, v in all_headers.items()]
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")

    async def _trickle(self, writer: asyncio.StreamWriter, data: bytes, interval_s: float) -> bool:
        """Send a 200 head at once, then ``data`` a byte at a time; return whether the whole
        body went out (False: the client gave up first, or the server is closing)."""
        writer.write(self._head(200, len(data), None))
        for index in range(len(data)):
            if writer.is_closing() or not await self._pause(interval_s):
                return False
            writer.write(data[index : index + 1])
            await writer.drain()
        return True

    # -- bodies ----------------------------------------------------------------------------

    def _reply_text(self, prompt: str) -> str:
        code = parent_program(prompt)
        if code is None:
            return _NO_PROGRAM_TEXT
        if self.mix.edits == "constant":
            return constant_edit(code, self._rng) or _NO_CONSTANT_TEXT
        request = LLMRequest(messages=(), parent_code=code, seed=next(self._serial))
        return self._mutator.reply_text(request)

    def _completion(self, api: Api, payload: dict[str, Any], step: Reply) -> dict[str, Any]:
        messages = [m for m in payload.get("messages", []) if isinstance(m, dict)]
        user = "\n".join(_text_of(m.get("content")) for m in messages if m.get("role") == "user")
        text = "" if step.empty else step.text if step.text is not None else self._reply_text(user)
        model = str(payload.get("model", "unknown"))
        serial = next(self._serial)
        if api == "openai":
            prompt = sum(_tokens(_text_of(m.get("content"))) for m in messages)
            return _openai_body(serial, model, text if not step.empty else None, prompt)
        return self._anthropic_body(serial, model, text, payload, messages)

    def _anthropic_body(
        self,
        serial: int,
        model: str,
        text: str,
        payload: dict[str, Any],
        messages: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """A Messages API reply; a cache_control system block is written once, then read."""
        system = payload.get("system", "")
        system_text = _text_of(system)
        cached = isinstance(system, list) and any(
            isinstance(b, dict) and b.get("cache_control") for b in system
        )
        write = read = 0
        plain = sum(_tokens(_text_of(m.get("content"))) for m in messages)
        if cached:
            if system_text in self._cached_systems:
                read = _tokens(system_text)
            else:
                write = _tokens(system_text)
                self._cached_systems.add(system_text)
        else:
            plain += _tokens(system_text)
        return {
            "id": f"msg_wire{serial:06d}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}] if text else [],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": plain,
                "output_tokens": _tokens(text),
                "cache_creation_input_tokens": write,
                "cache_read_input_tokens": read,
            },
        }


def _openai_body(serial: int, model: str, text: str | None, prompt_tokens: int) -> dict[str, Any]:
    """A chat.completion object as OpenAI returns it."""
    completion = _tokens(text or "")
    return {
        "id": f"chatcmpl-wire{serial:06d}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_wire",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
    }


# kind: (status, OpenAI type, OpenAI code, OpenAI message, Anthropic type, Anthropic message)
_ERRORS: dict[str, tuple[int, str, str | None, str, str, str]] = {
    "rate_limit": (429, "requests", "rate_limit_exceeded",
                   "Rate limit reached for {model} on requests per min (RPM). Please try again later.",
                   "rate_limit_error",
                   "This request would exceed the rate limit for your organization. Please retry later."),
    "server": (500, "server_error", None,
               "The server had an error while processing your request. Sorry about that!",
               "api_error", "Internal server error"),
    "overloaded": (529, "server_error", None, "The engine is currently overloaded.",
                   "overloaded_error", "Overloaded"),
    "auth": (401, "invalid_request_error", "invalid_api_key",
             "Incorrect API key provided: sk-wi***ey. You can find your API key in your settings.",
             "authentication_error", "invalid x-api-key"),
    "not_found": (404, "invalid_request_error", "model_not_found",
                  "The model `{model}` does not exist or you do not have access to it.",
                  "not_found_error", "model: {model}"),
    "bad_request": (400, "invalid_request_error", None,
                    "Invalid value for 'messages': expected an array.",
                    "invalid_request_error", "messages: Input should be a valid list"),
}  # fmt: skip


def _error(api: Api, step: Fail, model: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, body and headers of an error in ``api``'s real shape."""
    headers = {}
    if step.retry_after_s is not None:
        headers["retry-after"] = f"{step.retry_after_s:g}"
    oa_code: str | None
    if step.kind == "context_length":
        status, oa_type, oa_code, an_type = (
            400,
            "invalid_request_error",
            "context_length_exceeded",
            "invalid_request_error",
        )
        oa_message = (
            "This model's maximum context length is 128000 tokens. However, your messages "
            "resulted in 131072 tokens. Please reduce the length of the messages."
        )
        an_message = "prompt is too long: 210452 tokens > 200000 maximum"
    else:
        status, oa_type, oa_code, oa_message, an_type, an_message = _ERRORS[step.kind]
    error: dict[str, Any]
    if api == "openai":
        param = "messages" if step.kind == "context_length" else None
        error = {
            "message": oa_message.format(model=model),
            "type": oa_type,
            "param": param,
            "code": oa_code,
        }
        return status, {"error": error}, headers
    error = {"type": an_type, "message": an_message.format(model=model)}
    return status, {"type": "error", "error": error, "request_id": "req_wire"}, headers


@contextlib.contextmanager
def serve_in_thread(mix: FailureMix | None = None, *, port: int = 0) -> Iterator[WireServer]:
    """Run a :class:`WireServer` on its own event loop in a daemon thread, for sync callers
    (or callers whose own loop may block). Scripting from the calling thread is safe."""
    loop = asyncio.new_event_loop()
    server = WireServer(mix, port=port)
    ready = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except OSError as exc:  # e.g. the port is taken
            failure.append(exc)
            return
        finally:
            ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="wire-server", daemon=True)
    thread.start()
    ready.wait(10)
    if failure:
        thread.join(10)
        loop.close()
        raise failure[0]
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def _serve_forever(mix: FailureMix, port: int) -> None:
    async with WireServer(mix, port=port) as server:
        print(server.port, flush=True)  # the CLI's one output: the port, for scripts to read
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m evolve.testing.wire_server``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each reply")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="fraction of 500 replies")
    parser.add_argument("--garbage-rate", type=float, default=0.0, help="fraction without a diff")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--edits",
        choices=("mutator", "constant"),
        default="mutator",
        help="the offline mutator's edits, or a nudge of one constant (next to no CPU)",
    )
    args = parser.parse_args(argv)
    mix = FailureMix(args.latency, args.fail_rate, args.garbage_rate, args.seed, args.edits)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(mix, args.port))


if __name__ == "__main__":
    main()
