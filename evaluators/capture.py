"""Streaming readers for a sandboxed child's pipes, bounded in memory whatever the child writes.

The candidate's stdout/stderr keeps a head and a tail with a marker in between, so a 1 GB write
costs the parent a few kilobytes; the result channel keeps at most a fixed number of bytes and
says when it was cut.
"""

from __future__ import annotations

import asyncio
import os

#: Bytes read per wake-up (what asyncio's pipe transport reads too).
_READ_SIZE = 256 * 1024


class _Sink:
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

    def closed(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


class PipeReader:
    """Read one pipe's read end in the event loop until EOF or :meth:`close`.

    A reader callback on the descriptor, not a pipe transport: the same reads for half the CPU
    (no file object, protocol hand-shake or deferred callbacks), which counts on every candidate.
    """

    def __init__(self, head: int, tail: int) -> None:
        self._head = head
        self._tail = tail
        self._sink: _Sink | None = None
        self._fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self, fd: int) -> None:
        """Take ownership of ``fd`` (closed at EOF or by :meth:`close`)."""
        loop = asyncio.get_running_loop()
        self._sink = _Sink(self._head, self._tail)
        try:
            os.set_blocking(fd, False)
            loop.add_reader(fd, self._read_ready)
        except BaseException:
            os.close(fd)
            self._sink.closed()
            raise
        self._fd, self._loop = fd, loop

    def _read_ready(self) -> None:
        assert self._fd is not None and self._sink is not None
        try:
            data = os.read(self._fd, _READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""  # a broken pipe ends the stream like EOF
        if data:
            self._sink.data_received(data)
        else:
            self.close()

    async def wait_eof(self, within_s: float) -> bool:
        """Wait until the writer side is closed everywhere; False on timeout."""
        if self._sink is None or self._sink.done.done():
            return True
        try:
            async with asyncio.timeout(within_s):
                await asyncio.shield(self._sink.done)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        """Stop reading and close the descriptor (idempotent)."""
        if self._fd is not None:
            assert self._loop is not None and self._sink is not None
            fd, self._fd = self._fd, None
            self._loop.remove_reader(fd)
            os.close(fd)
            self._sink.closed()

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
