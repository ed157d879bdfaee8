"""The model layer: one small async interface (:class:`LLM`), the built-in offline mutator, the
OpenAI/Anthropic/OpenAI-compatible providers, ensembles and replay. Built by
:func:`evolve.llm.factory.build_llm` (imported lazily there, so importing this package does not
load the SDKs)."""

from evolve.llm.base import LLM, LLMError
from evolve.llm.config import LLMConfig, ModelSpec

__all__ = ["LLM", "LLMConfig", "LLMError", "ModelSpec"]
