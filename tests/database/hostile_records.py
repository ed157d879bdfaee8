"""Records carrying hostile text, and the check that a database stores and returns them safely;
shared by the SQLite and the PostgreSQL tests."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from evolve.database import Database
from evolve.records import ErrorInfo, LLMReply, Message, Program, RetriedFailure, Status
from evolve.text import MAX_MESSAGE_CHARS, MAX_OUTPUT_CHARS, MAX_REPLY_CHARS

#: A lone surrogate (no UTF-8 encoding), a NUL (PostgreSQL refuses it) and 40 MB behind them.
HOSTILE = "bad \ud800 and \x00 here" + "m" * 40_000_000 + " the end"
CLEAN_HEAD = "bad \ufffd and \ufffd here"


#: A candidate's ``run`` that prints a NUL byte and (for most children) raises with a lone
#: surrogate in its message; it replaces the scaffolded problem's ``run``.
HOSTILE_RUN = '''
def run():
    import sys
    pts = points()
    sys.stdout.write("out\\x00put\\n")  # a NUL byte: PostgreSQL refuses it in text
    if pts[0][0] != 0.1:  # most children: the mutator moved the first point
        raise ValueError("bad point \\ud800 here")  # a lone surrogate: UTF-8 cannot encode it
    return np.clip(np.array(pts, dtype=float), 0.0, 1.0).tolist()
'''


def make_candidates_hostile(problem_dir: Path) -> None:
    """Give the scaffolded problem in ``problem_dir`` the hostile ``run`` above."""
    initial = problem_dir / "initial.py"
    source = initial.read_text()
    initial.write_text(source[: source.index("def run():")] + HOSTILE_RUN.lstrip("\n"))


def _check(stored: str | None, limit: int) -> None:
    assert stored is not None
    assert stored.startswith(CLEAN_HEAD) and stored.endswith(" the end")
    assert len(stored) <= limit and "chars cut" in stored
    assert "\x00" not in stored and "\ud800" not in stored


def store_and_read_hostile_text(db: Database) -> None:
    """Write hostile text through every writing method, bypassing the records' validation as
    ``model_copy`` does, then read it back bounded and clean."""
    db.create_run("h", problem="p", problem_root="/p", fingerprint="f", config={}, seed=0)
    pending = Program(
        id="h0", run_id="h", iteration=0, parent_id=None, island=0, generation=0,
        code="x = 1\n", code_hash="c0", status=Status.PENDING,
    )
    db.add_program(pending.model_copy(update={"code": "x = '\x00\ud800'\n", "diff": HOSTILE}))
    error = ErrorInfo.model_construct(kind=Status.EXCEPTION, message=HOSTILE, stage=HOSTILE)
    failed = pending.model_copy(update={"status": Status.EXCEPTION, "error": error, "feedback": HOSTILE})
    db.finish_program(failed, stdout_tail=HOSTILE)
    reply = LLMReply.model_construct(
        model="m", text=HOSTILE, input_tokens=1, output_tokens=1, cache_read_tokens=0,
        cache_write_tokens=0, latency_s=0.1, cost_usd=0.0, retried=(),
    )
    prompt = [Message.model_construct(role="user", content="see \ud800\x00")]
    retried = [RetriedFailure.model_construct(kind="server", message=HOSTILE)]
    db.add_llm_call("h", 1, prompt, reply, model="m", mode="diff", retried=retried)
    db.add_llm_call("h", 2, prompt, None, model="m", mode="diff", error=("server", HOSTILE))
    db.set_run_status("h", "failed", reason=HOSTILE)

    program = db.program("h0")
    assert program is not None and program.error is not None
    _check(program.error.message, MAX_MESSAGE_CHARS)
    _check(program.feedback, MAX_MESSAGE_CHARS)
    assert program.code == "x = '\ufffd\ufffd'\n"
    assert program.error.stage is not None and len(program.error.stage) <= 200
    [(stored_prompt, stored_reply)] = db.recorded_replies("h")
    _check(stored_reply.text, MAX_REPLY_CHARS)
    assert stored_prompt[0]["content"] == "see \ufffd\ufffd"
    run = db.get_run("h")
    assert run is not None
    _check(run.stop_reason, MAX_MESSAGE_CHARS)
    with db._engine.connect() as conn:
        tail = conn.execute(text("select stdout_tail from programs where id = 'h0'")).scalar()
        messages = conn.execute(text(
            "select message from llm_retries join llm_calls on llm_calls.id = llm_call_id"
            " where run_id = 'h'"
        )).scalars().all()
        call_error = conn.execute(
            text("select error_message from llm_calls where run_id = 'h' and iteration = 2")
        ).scalar()
    _check(tail, MAX_OUTPUT_CHARS)
    _check(messages[0], MAX_MESSAGE_CHARS)
    _check(call_error, MAX_MESSAGE_CHARS)
    assert db.llm_failures("h") == [{"model": "m", "kind": "server", "retried": 1, "failed": 1}]
