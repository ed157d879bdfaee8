"""The web UI's HTTP layer: pages, the JSON API behind them, and server-sent events.

Every page is a server-rendered template; the run, lineage and programs pages draw their charts
from the JSON API (``/api/...``) and redraw when the run's events stream says it changed. Reads
run in Starlette's thread pool, so a slow database never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from evolve.database import Database
from evolve.errors import UserError
from evolve.ui import views
from evolve.ui.catalog import RunCatalog, RunMeta
from evolve.ui.control import Control
from evolve.ui.highlight import diff_html, python_html, stylesheet
from evolve.ui.security import Guard, new_token

HERE = Path(__file__).resolve().parent
_CACHED_RUNS = 8  # runs whose program outlines are kept between requests


def _json_safe(value: Any) -> Any:
    """NaN and infinities as null: JSON has no such numbers, and a score may be one."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


class Api(JSONResponse):
    def render(self, content: Any) -> bytes:
        try:
            text = json.dumps(content, separators=(",", ":"), default=str, allow_nan=False)
        except ValueError:  # a NaN or an infinity somewhere: the slow, careful way
            text = json.dumps(_json_safe(content), separators=(",", ":"), default=str)
        return text.encode()


def _int(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise HTTPException(400, f"{name}: not an integer: {raw!r}") from None


def _float(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        return float(raw)
    except ValueError:
        raise HTTPException(400, f"{name}: not a number: {raw!r}") from None


class UI:
    """The routes over one :class:`RunCatalog` (``poll_s``: how often event streams look for
    changes)."""

    def __init__(self, catalog: RunCatalog, *, poll_s: float = 1.0) -> None:
        self.catalog = catalog
        self.poll_s = poll_s
        self._cache: dict[str, tuple[Any, list[views.Outline]]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals["highlight_css"] = stylesheet()
        self.templates.env.filters["python_html"] = python_html
        self.templates.env.filters["diff_html"] = diff_html
        self.templates.env.filters["score"] = lambda v: "-" if v is None else f"{v:.10g}"

    # -- data ----------------------------------------------------------------------------------
    def _run(self, run_id: str) -> tuple[Database, RunMeta]:
        try:
            db = self.catalog.db_for(run_id)
        except UserError as exc:
            raise HTTPException(404, str(exc)) from None
        return db, self.catalog.meta(run_id, db)

    def _outlines(self, run_id: str, db: Database) -> list[views.Outline]:
        """The run's program outlines, read again only when the run has moved on (a page
        asks for several views of them at once, and a finished run never changes)."""
        with self._locks_lock:
            lock = self._locks.setdefault(run_id, threading.Lock())
        with lock:
            row = db.get_run(run_id)
            key = (str(row.updated_at) if row else None, sorted(db.status_counts(run_id).items()))
            cached = self._cache.get(run_id)
            if cached is not None and cached[0] == key:
                return cached[1]
            outlines = db.program_outlines(run_id)
            self._cache.pop(run_id, None)
            while len(self._cache) >= _CACHED_RUNS:
                self._cache.pop(next(iter(self._cache)))  # the least recently read run
            self._cache[run_id] = (key, outlines)
            return outlines

    def runs(self) -> list[dict[str, Any]]:
        out = []
        for run_id, db, problem in self.catalog.run_ids():
            if db is None:
                out.append({"id": run_id, "state": problem, "alive": False})
                continue
            row = db.get_run(run_id)
            if row is not None:
                out.append(views.overview(db, row, self.catalog.meta(run_id, db)))
        return out

    def run(self, run_id: str) -> dict[str, Any]:
        db, meta = self._run(run_id)
        row = db.get_run(run_id)
        assert row is not None
        return views.overview(db, row, meta)

    def charts(self, run_id: str) -> dict[str, Any]:
        db, meta = self._run(run_id)
        return views.charts(self._outlines(run_id, db), db.llm_spend(run_id), meta)

    def archive(self, run_id: str) -> dict[str, Any]:
        db, meta = self._run(run_id)
        row = db.get_run(run_id)
        assert row is not None
        islands = int(row.config.get("search", {}).get("islands", 1))
        return views.archive(self._outlines(run_id, db), meta, islands)

    def models(self, run_id: str) -> list[dict[str, Any]]:
        db, meta = self._run(run_id)
        return views.models(db, run_id, self._outlines(run_id, db), meta)

    def lineage(self, run_id: str) -> dict[str, Any]:
        db, meta = self._run(run_id)
        return views.lineage_graph(self._outlines(run_id, db), meta)

    def program(self, run_id: str, program_id: str) -> dict[str, Any]:
        db, meta = self._run(run_id)
        found = views.program_detail(db, run_id, program_id, meta)
        if found is None:
            raise HTTPException(404, f"no program '{program_id}' in run '{run_id}'")
        return found

    def programs(self, run_id: str, request: Request) -> dict[str, Any]:
        db, meta = self._run(run_id)
        q = request.query_params
        sort = q.get("sort", "iteration")
        if sort not in ("iteration", "score"):
            raise HTTPException(400, f"sort: 'iteration' or 'score', got {sort!r}")
        return views.filter_programs(
            self._outlines(run_id, db), meta,
            status=q.get("status") or None, island=_int(request, "island"), model=q.get("model") or None,
            min_score=_float(request, "min_score"), max_score=_float(request, "max_score"), sort=sort,
            limit=min(1000, max(1, _int(request, "limit") or 100)), offset=max(0, _int(request, "offset") or 0),
        )

    def fingerprint(self, run_id: str | None) -> str:
        """What changes when a run (or, without ``run_id``, any run) moves on."""
        marks = []
        for rid, db, problem in self.catalog.run_ids():
            if run_id is not None and rid != run_id:
                continue
            row = db.get_run(rid) if db is not None else None
            counts = db.status_counts(rid) if db is not None else {}
            marks.append([rid, problem, row.status if row else None, str(row.updated_at) if row else None, sorted(counts.items())])
        return json.dumps(marks)

    # -- endpoints -----------------------------------------------------------------------------
    def api(self, fn: Callable[..., Any], *params: str) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            args = [request.path_params[p] for p in params]
            return Api(await run_in_threadpool(fn, *args))

        return endpoint

    async def api_programs(self, request: Request) -> Response:
        return Api(await run_in_threadpool(self.programs, request.path_params["run"], request))

    async def events(self, request: Request) -> Response:
        """Server-sent events: ``change`` each time the run (or any run) moves on."""
        run_id = request.path_params.get("run")
        if run_id is not None:
            await run_in_threadpool(self._run, run_id)  # 404 for an unknown run

        async def stream() -> AsyncIterator[str]:
            last = None
            quiet = 0.0
            yield "retry: 2000\n\n"
            while True:
                mark = await run_in_threadpool(self.fingerprint, run_id)
                if mark != last:
                    last, quiet = mark, 0.0
                    yield f"event: change\ndata: {json.dumps({'run': run_id})}\n\n"
                elif quiet >= 15.0:
                    quiet = 0.0
                    yield ": keep-alive\n\n"
                await asyncio.sleep(self.poll_s)
                quiet += self.poll_s

        return StreamingResponse(
            stream(), media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    async def page(self, request: Request) -> Response:
        name = request.scope["route"].name
        run_id = request.path_params.get("run")
        context: dict[str, Any] = {"run_id": run_id}
        if run_id is not None:
            context["run"] = await run_in_threadpool(self.run, run_id)
        if name == "program" and run_id is not None:
            context["p"] = await run_in_threadpool(self.program, run_id, request.path_params["program"])
        return self.templates.TemplateResponse(request, f"{name}.html", context)

    async def not_found(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path.startswith("/api/"):
            return Api({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return self.templates.TemplateResponse(
            request, "error.html", {"status": exc.status_code, "detail": exc.detail}, status_code=exc.status_code
        )


def build_app(catalog: RunCatalog, *, token: str | None, poll_s: float = 1.0) -> Starlette:
    """The ASGI app (``token``: required on every request when set; see :mod:`evolve.ui.security`)."""
    ui = UI(catalog, poll_s=poll_s)
    control = Control(catalog, csrf=new_token())
    ui.templates.env.globals["csrf"] = control.csrf
    page = ui.page
    routes = [
        Route("/", page, name="runs"),
        Route("/runs/{run}", page, name="run"),
        Route("/runs/{run}/lineage", page, name="lineage"),
        Route("/runs/{run}/programs", page, name="programs"),
        Route("/runs/{run}/programs/{program}", page, name="program"),
        Route("/api/runs", ui.api(ui.runs)),
        Route("/api/events", ui.events),
        Route("/api/runs/{run}", ui.api(ui.run, "run")),
        Route("/api/runs/{run}/charts", ui.api(ui.charts, "run")),
        Route("/api/runs/{run}/archive", ui.api(ui.archive, "run")),
        Route("/api/runs/{run}/models", ui.api(ui.models, "run")),
        Route("/api/runs/{run}/lineage", ui.api(ui.lineage, "run")),
        Route("/api/runs/{run}/programs", ui.api_programs),
        Route("/api/runs/{run}/programs/{program}", ui.api(ui.program, "run", "program")),
        Route("/api/runs/{run}/events", ui.events),
        Route("/api/runs/{run}/commands", control.commands, methods=["GET", "POST"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(Guard, token=token)],
        exception_handlers={HTTPException: ui.not_found},
        lifespan=_closing(catalog, control),
    )


def _closing(catalog: RunCatalog, control: Control) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            control.close()
            catalog.close()

    return lifespan
