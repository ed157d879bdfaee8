"""Streaming readers for a sandboxed child's pipes, bounded in memory whatever the child writes.

The candidate's stdout/stderr keeps a head and a tail with a marker in between, so a 1 GB write
costs the parent a few kilobytes; the result channel keeps at most a fixed number of bytes and
says when it was cut.
"""

from __future__ import annotations

import asyncio
import os


class _Sink(asyncio.Protocol):
    """Collect bytes from a pipe: the first ``head`` bytes, the last ``tail`` bytes, a count."""

    def __init__(self, head: int, tail: int) -> None:
        self._head_cap = head
        self._tail_cap = tail
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.total += len(data)
        room = self._head_cap - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data and self._tail_cap:
            self.tail += data[-self._tail_cap :]
            if len(self.tail) > self._tail_cap:
                del self.tail[: len(self.tail) - self._tail_cap]

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


class PipeReader:
    """Read one pipe's read end in the event loop until EOF or :meth:`close`."""

    def __init__(self, head: int, tail: int) -> None:
        self._head = head
        self._tail = tail
        self._sink: _Sink | None = None
        self._transport: asyncio.ReadTransport | None = None

    async def start(self, fd: int) -> None:
        """Take ownership of ``fd`` (closed with the transport)."""
        loop = asyncio.get_running_loop()
        self._sink = _Sink(self._head, self._tail)
        pipe = os.fdopen(fd, "rb", buffering=0)
        transport, _ = await loop.connect_read_pipe(lambda: self._sink_or_fail(), pipe)
        self._transport = transport

    def _sink_or_fail(self) -> _Sink:
        assert self._sink is not None
        return self._sink

    async def wait_eof(self, within_s: float) -> bool:
        """Wait until the writer side is closed everywhere; False on timeout."""
        if self._sink is None:
            return True
        try:
            await asyncio.wait_for(asyncio.shield(self._sink.done), within_s)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    @property
    def total(self) -> int:
        return self._sink.total if self._sink else 0

    def data(self) -> bytes:
        """Head only (for the result channel, which never keeps a tail)."""
        return bytes(self._sink.head) if self._sink else b""

    def text(self) -> str:
        """Head and tail as text, with a marker saying how much was dropped between them."""
        if self._sink is None:
            return ""
        head, tail, total = self._sink.head, self._sink.tail, self._sink.total
        dropped = total - len(head) - len(tail)
        if dropped <= 0:
            body = bytes(head) + bytes(tail)
            return body.decode("utf-8", "replace")
        marker = f"\n[... {dropped} bytes of output truncated ...]\n"
        return head.decode("utf-8", "replace") + marker + tail.decode("utf-8", "replace")
