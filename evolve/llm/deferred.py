"""A network model whose SDK loads while the run starts, not before it.

Importing an official SDK costs about half a second of CPU (openai) to three seconds
(anthropic). A run's first request cannot go out before its initial program is evaluated, and
while the sandbox starts up for that (in other processes) this one mostly waits. So
:func:`build_llm_deferred` checks the configuration (keys included) at once, starts the SDK's
import on a thread, and builds the real model (:func:`evolve.llm.factory.build_llm`) on the first
request, by when the import is done.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from collections.abc import Mapping

from evolve.llm.base import LLM
from evolve.llm.config import LLMConfig
from evolve.llm.factory import _api_key, build_llm
from evolve.records import LLMReply, LLMRequest

__all__ = ["DeferredLLM", "build_llm_deferred"]

_MODULES = {
    "openai": "evolve.llm.openai_provider",
    "local": "evolve.llm.openai_provider",
    "anthropic": "evolve.llm.anthropic_provider",
}


def _import(modules: tuple[str, ...]) -> None:
    for module in modules:
        importlib.import_module(module)


def build_llm_deferred(config: LLMConfig, *, seed: int, environ: Mapping[str, str]) -> LLM:
    """:func:`build_llm`, with a single network model built on its first request (its SDK
    imported meanwhile on a thread). The offline mutator and ensembles are built at once.

    Raises:
        UserError: a model's key variable is not set in ``environ`` (checked now).
    """
    if config.provider not in _MODULES:
        return build_llm(config, seed=seed, environ=environ)
    (spec,) = config.resolved_models()
    _api_key(spec, environ)  # a missing key is an error now, not at the first request
    modules = (_MODULES[config.provider],)
    importing = threading.Thread(target=_import, args=(modules,), name="evolve-sdk-import", daemon=True)
    importing.start()
    return DeferredLLM(config, seed, dict(environ), spec.model, modules, importing)


class DeferredLLM:
    """Builds its model on the first :meth:`complete`, then hands every call to it."""

    def __init__(self, config: LLMConfig, seed: int, environ: Mapping[str, str], name: str,
                 modules: tuple[str, ...], importing: threading.Thread | None = None) -> None:
        self._config = config
        self._seed = seed
        self._environ = environ
        self._name = name
        self._modules = modules
        self._importing = importing
        self._llm: LLM | None = None
        self._lock = asyncio.Lock()

    @property
    def name(self) -> str:
        return self._name

    async def _model(self) -> LLM:
        async with self._lock:
            if self._llm is None:
                await asyncio.to_thread(_import, self._modules)  # done, or waits for the import thread
                self._llm = build_llm(self._config, seed=self._seed, environ=self._environ)
            return self._llm

    async def complete(self, request: LLMRequest) -> LLMReply:
        llm = self._llm if self._llm is not None else await self._model()
        return await llm.complete(request)

    async def aclose(self) -> None:
        if self._importing is not None:  # a run that ends before its first request: no import left behind
            await asyncio.to_thread(self._importing.join)
        if self._llm is not None:
            await self._llm.aclose()
