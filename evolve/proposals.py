"""One proposal: prompt the model for a selection, turn its reply into a child, record both."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable

from evolve.codehash import code_hash
from evolve.diffs import (
    DiffError,
    apply_edits,
    extract_program,
    merge_rewrite,
    parse_edits,
    unified_diff,
)
from evolve.llm.base import LLM, LLMError
from evolve.outcomes import RunAborted
from evolve.prompts import PromptBuilder, PromptContext
from evolve.recorder import Call, Recorder
from evolve.records import ErrorInfo, LLMReply, LLMRequest, Program, Status
from evolve.search.protocol import Selection

#: Replies shorter than this are parsed on the event loop (faster than a thread hand-over).
_INLINE_PARSE_CHARS = 16_384


def program_id(run_id: str, iteration: int) -> str:
    """Deterministic id: the same run and iteration always name the same program."""
    return hashlib.sha1(f"{run_id}:{iteration}".encode()).hexdigest()[:12]


def build_child(parent_code: str, reply_text: str, mode: str) -> str:
    """Turn a reply into the child's code; raises DiffError with a reason for the next prompt."""
    if mode == "diff":
        return apply_edits(parent_code, parse_edits(reply_text))
    return merge_rewrite(parent_code, extract_program(reply_text))


class Proposer:
    """Makes and records the child of a :class:`Selection` (or its failure, as a program).

    Args:
        on_reply: told every reply that ends the attempts (budgets, the ensemble's learning).
        on_llm_error: told every retryable model failure (the circuit breaker).
        in_flight: model calls at once.
    """

    def __init__(
        self,
        run_id: str,
        llm: LLM,
        prompts: PromptBuilder,
        recorder: Recorder,
        *,
        in_flight: int,
        on_reply: Callable[[int, LLMReply], None],
        on_llm_error: Callable[[LLMError], None],
    ) -> None:
        self._run_id = run_id
        self._llm = llm
        self._prompts = prompts
        self._recorder = recorder
        self._slots = asyncio.Semaphore(in_flight)
        self._on_reply = on_reply
        self._on_llm_error = on_llm_error

    async def propose(self, sel: Selection) -> Program:
        """The recorded child, ``PENDING`` evaluation, or a recorded terminal failure."""
        t0 = time.monotonic()
        parent = sel.parent
        assert parent.code is not None
        ctx = PromptContext(parent=parent, mode=sel.mode, top=sel.top, diverse=sel.diverse,
                            failures=sel.failures, other=sel.other)
        base = Program(
            id=program_id(self._run_id, sel.iteration),
            run_id=self._run_id,
            iteration=sel.iteration,
            parent_id=parent.id,
            island=sel.island,
            generation=parent.generation + 1,
            code=None,
            code_hash=None,
            status=Status.PENDING,
            mode=sel.mode,
            inspiration_ids=tuple(p.id for p in (*sel.top, *sel.diverse, *([sel.other] if sel.other else []))),
        )
        reply, call = await self._ask(sel, ctx)
        t_llm = time.monotonic() - t0
        if reply is None:
            return await self._failed(base, Status.LLM_ERROR, "the model call failed", call, t_llm)
        try:
            code = await self._build_child(parent.code, reply.text, "diff" if sel.mode == "diff" else "rewrite")
        except DiffError as exc:
            return await self._failed(base, Status.DIFF_ERROR, str(exc), call, t_llm)
        if code == parent.code:
            return await self._failed(base, Status.DIFF_ERROR, "the edits change nothing", call, t_llm)
        child = base.model_copy(
            update={"code": code, "code_hash": code_hash(code), "diff": unified_diff(parent.code, code),
                    "timings": {"llm_s": t_llm}}
        )
        await self._recorder.program(child, call)
        return child

    async def _build_child(self, parent_code: str, reply_text: str, mode: str) -> str:
        """Parse and apply a reply; a long one is parsed on a thread so the loop never stalls."""
        if len(reply_text) < _INLINE_PARSE_CHARS:
            return build_child(parent_code, reply_text, mode)
        return await asyncio.to_thread(build_child, parent_code, reply_text, mode)

    async def _ask(self, sel: Selection, ctx: PromptContext) -> tuple[LLMReply | None, Call | None]:
        """Ask the model; shrink the prompt on a context-length error; record every call.

        The call that ends the attempts (a reply, or a retryable error) is returned unwritten, to
        be recorded with the program made from it in one transaction.
        """
        attempts = [ctx, PromptContext(parent=ctx.parent, mode=ctx.mode, top=ctx.top[:1], other=ctx.other),
                    PromptContext(parent=ctx.parent, mode=ctx.mode if ctx.mode != "crossover" else "diff")]
        for attempt in attempts:
            messages = self._prompts.render(attempt)
            request = LLMRequest(messages=messages, mode="diff" if attempt.mode == "diff" else "rewrite",
                                 parent_code=ctx.parent.code or "", seed=sel.seed)
            try:
                async with self._slots:
                    reply = await self._llm.complete(request)
            except LLMError as exc:
                failed = Call(messages, attempt.mode, error=(exc.kind, str(exc)), retried=exc.retried)
                if exc.retryable and exc.kind != "context_length":
                    self._on_llm_error(exc)
                    return None, failed
                await self._recorder.failed_call(sel.iteration, failed)
                if exc.kind == "context_length":
                    continue
                raise RunAborted(str(exc)) from exc
            self._on_reply(sel.iteration, reply)
            return reply, Call(messages, attempt.mode, reply=reply, retried=reply.retried)
        return None, None

    async def _failed(self, base: Program, status: Status, message: str, call: Call | None, t_llm: float) -> Program:
        failed = base.model_copy(
            update={"status": status, "error": ErrorInfo(kind=status, message=message), "timings": {"llm_s": t_llm}}
        )
        await self._recorder.program(failed, call)
        return failed


__all__ = ["Proposer", "build_child", "program_id"]
