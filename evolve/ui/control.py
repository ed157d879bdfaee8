"""The web UI's side of the control plane: list a run's commands, and record a new one.

Writing is guarded beyond the host or token check of :mod:`evolve.ui.security`: a request must
carry the server's control token (``X-Evolve-CSRF``, handed only to the app's own pages in a
meta tag, which another site's page cannot read), send JSON, and come from the same origin when
the browser names one. The run's controller applies them (``evolve.steering``); they are recorded
(see :mod:`evolve.database.commands`).
"""

from __future__ import annotations

import json
import secrets
import threading
from typing import Any

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from evolve.database.commands import CommandLog, parse_command
from evolve.database.store import make_engine
from evolve.errors import UserError
from evolve.ui.catalog import RunCatalog

MAX_BODY = 5_000_000  # bytes: an injected program of MAX_CODE_CHARS characters, and then some
HEADER = "x-evolve-csrf"


class Control:
    """Command endpoints over a catalog; ``csrf``: the token every write must carry."""

    def __init__(self, catalog: RunCatalog, *, csrf: str) -> None:
        self.catalog = catalog
        self.csrf = csrf
        self._engines: dict[str, Engine] = {}
        self._lock = threading.Lock()

    def _log(self, run_id: str) -> CommandLog:
        try:
            url = self.catalog.url_for(run_id)
        except UserError as exc:
            raise HTTPException(404, str(exc)) from None
        with self._lock:
            engine = self._engines.get(url)
            if engine is None:
                engine = self._engines[url] = make_engine(url)
        return CommandLog(engine)

    def close(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    def history(self, run_id: str) -> list[dict[str, Any]]:
        return self._log(run_id).history(run_id)

    async def commands(self, request: Request) -> Response:
        run_id = request.path_params["run"]
        if request.method == "GET":
            return JSONResponse(await run_in_threadpool(self.history, run_id))
        self._check_origin(request)
        body = await _read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("kind"), str):
            raise HTTPException(400, "expected a JSON object with a 'kind'")
        args = body.get("args", {})
        if not isinstance(args, dict):
            raise HTTPException(400, "args: expected a JSON object")
        try:
            command = parse_command(body["kind"], args)
        except UserError as exc:
            raise HTTPException(400, str(exc)) from None
        client = request.client.host if request.client else "?"
        number = await run_in_threadpool(
            lambda: self._log(run_id).record(run_id, command, source=f"ui from {client}")
        )
        return JSONResponse(
            {"id": number, "kind": command.kind, "applied": False,
             "note": "sent; a live run applies it within a second"},
            status_code=201,
        )

    def _check_origin(self, request: Request) -> None:
        given = request.headers.get(HEADER, "")
        if not secrets.compare_digest(given, self.csrf):
            raise HTTPException(403, f"a command needs the {HEADER} header of the app's pages")
        origin = request.headers.get("origin")
        if origin is not None and origin.split("://", 1)[-1] != request.headers.get("host"):
            raise HTTPException(403, "a command must come from this server's own pages")
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise HTTPException(415, "a command is sent as application/json")


async def _read_json(request: Request) -> Any:
    size = 0
    chunks = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise HTTPException(413, f"a command is at most {MAX_BODY:,} bytes")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise HTTPException(400, "the body is not JSON") from None
