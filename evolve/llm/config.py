"""Configuration of the model layer (the ``llm`` Hydra group), validated at load.

Two shapes share one record so that the Hydra group files can stay flat:

* a single model, described by the top-level shortcut fields (``provider``, ``model``,
  ``base_url``, ``api_key_env``, ...), which is what ``llm=openai llm.model=...`` overrides touch;
* an ensemble (``provider: ensemble``), described by the ``models`` list, sampled by ``weight``
  and optionally steered by a bandit.

:meth:`LLMConfig.resolved_models` turns either shape into a tuple of :class:`ModelSpec`, which is
all the factory reads. Secrets never appear here: a model names the environment variable that
holds its key.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from evolve.text import MAX_REPLY_CHARS

__all__ = ["MODE_KINDS", "LLMConfig", "ModelSpec", "RetryConfig"]

#: Proposal kinds the controller knows; ``mode_weights`` may only name these.
MODE_KINDS = frozenset({"diff", "rewrite", "crossover"})

NetworkProvider = Literal["openai", "anthropic", "local"]

#: Where a provider lives when ``base_url`` is not given; ``local`` has no default on purpose.
DEFAULT_BASE_URLS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
}

#: Environment variable read for the key when ``api_key_env`` is not given.
DEFAULT_KEY_ENVS: dict[str, str] = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RetryConfig(_Frozen):
    """How retryable failures (429, 5xx, timeouts, dropped connections) are retried.

    The SDKs' own retries are switched off (``max_retries=0`` on the clients) so that one policy,
    with a seeded jitter and a cap on how long a ``Retry-After`` may stall a worker, applies to
    every provider; see :mod:`evolve.llm.retry`.
    """

    max_retries: int = Field(default=4, ge=0, description="retries after the first attempt")
    initial_delay_s: float = Field(default=1.0, ge=0, description="first backoff delay")
    max_delay_s: float = Field(default=30.0, ge=0, description="cap on one backoff delay")
    max_retry_after_s: float = Field(
        default=120.0,
        ge=0,
        description="honour a server's Retry-After up to this; a longer one ends the retries",
    )


class ModelSpec(_Frozen):
    """One network model: where it is, how to call it and what it costs."""

    provider: NetworkProvider
    model: str = Field(min_length=1, description="model name sent to the API; names the replies")
    base_url: str | None = Field(
        default=None, description="API root; default the provider's public URL (required for local)"
    )
    api_key_env: str | None = Field(
        default=None,
        description="NAME of the environment variable holding the key; local may leave it unset",
    )
    temperature: float | None = Field(
        default=None, ge=0, le=2, description="sampling temperature; None: the provider's default"
    )
    max_tokens: int = Field(default=4096, ge=1, description="max output tokens per reply")
    timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="total deadline of one attempt, request to last reply byte (not an idle "
        "timeout); a call takes at most (retry.max_retries + 1) of them plus the backoff",
    )
    weight: float = Field(default=1.0, ge=0, description="ensemble sampling weight")
    max_concurrency: int = Field(
        default=4, ge=1, description="requests in flight to this model's endpoint, at most"
    )
    context_tokens: int | None = Field(
        default=None, ge=1, description="the model's context window in tokens (evolve check tests the prompt fits)"
    )
    price_in_per_mtok: float = Field(default=0.0, ge=0, description="USD per 1M input tokens")
    price_out_per_mtok: float = Field(default=0.0, ge=0, description="USD per 1M output tokens")
    price_cache_read_per_mtok: float | None = Field(
        default=None, ge=0, description="USD per 1M cache-read tokens; None: the input price"
    )
    price_cache_write_per_mtok: float | None = Field(
        default=None, ge=0, description="USD per 1M cache-write tokens; None: the input price"
    )
    extra_body: dict[str, Any] = Field(
        default_factory=dict,
        description="extra JSON fields for the request body (e.g. vLLM's top_k, reasoning_effort)",
    )

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        if self.provider == "local" and not self.base_url:
            raise ValueError(f"model '{self.model}': provider local needs a base_url")
        if self.provider == "anthropic" and self.temperature is not None:
            # Anthropic API version 2026-10-21, sent by SDK 2.x, rejects sampling parameters.
            raise ValueError(
                f"model '{self.model}': anthropic takes no temperature (API 2026-10-21 removed "
                "it); set temperature: null"
            )
        return self

    def resolved_base_url(self) -> str:
        """The API root this model is called at."""
        return self.base_url or DEFAULT_BASE_URLS[self.provider]

    def resolved_key_env(self) -> str | None:
        """The environment variable holding the key; None for a keyless local server."""
        if self.api_key_env:
            return self.api_key_env
        return DEFAULT_KEY_ENVS.get(self.provider)


# Shortcut fields copied into the single ModelSpec; an ensemble must not set them.
_SHORTCUTS = (
    "model",
    "base_url",
    "api_key_env",
    "temperature",
    "max_tokens",
    "timeout_s",
    "max_concurrency",
    "context_tokens",
    "price_in_per_mtok",
    "price_out_per_mtok",
    "price_cache_read_per_mtok",
    "price_cache_write_per_mtok",
    "extra_body",
)


class LLMConfig(_Frozen):
    """Which model(s) propose programs. The default, ``offline``, needs no key and no network.

    For ``openai``, ``anthropic`` and ``local`` the shortcut fields describe the one model; for
    ``ensemble`` the ``models`` list does, and the shortcut fields must be left unset.
    """

    provider: Literal["offline", "openai", "anthropic", "local", "ensemble", "replay"] = "offline"
    replay_run: str | None = Field(
        default=None, description="replay: the run (folder, or id with replay_db) whose replies to replay"
    )
    replay_db: str | None = Field(default=None, description="replay: that run's database URL")
    # The one model of openai/anthropic/local: the fields of ModelSpec, documented there.
    model: str = Field(default="offline-mutator", min_length=1)
    base_url: str | None = None
    api_key_env: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int = Field(default=4096, ge=1)
    timeout_s: float = Field(default=120.0, gt=0)
    max_concurrency: int = Field(default=4, ge=1)
    context_tokens: int | None = Field(default=None, ge=1)
    price_in_per_mtok: float = Field(default=0.0, ge=0)
    price_out_per_mtok: float = Field(default=0.0, ge=0)
    price_cache_read_per_mtok: float | None = Field(default=None, ge=0)
    price_cache_write_per_mtok: float | None = Field(default=None, ge=0)
    extra_body: dict[str, Any] = Field(default_factory=dict)

    models: tuple[ModelSpec, ...] = Field(default=(), description="ensemble members")
    bandit: Literal["ucb1", "thompson"] | None = Field(
        default=None, description="ensemble: steer toward models that improve most per dollar"
    )
    retry: RetryConfig = RetryConfig()
    max_reply_chars: int = Field(
        default=200_000,
        ge=1,
        le=MAX_REPLY_CHARS,
        description="a longer reply is a malformed one (retried): no real model writes 200k "
        "characters under max_tokens, and the run would store and parse it whole",
    )
    http_client: Literal["aiohttp", "httpx"] = Field(
        default="aiohttp",
        description="the SDKs' HTTP transport: aiohttp (the SDKs' DefaultAioHttpClient; half the "
        "CPU per OpenAI call here) or httpx (their built-in default)",
    )

    mode_weights: dict[str, float] = Field(
        default_factory=lambda: {"diff": 1.0}, description="proposal kind -> probability weight"
    )
    max_edits: int = Field(default=3, ge=1, description="offline: edits per proposal, at most")

    @model_validator(mode="after")
    def _check(self) -> LLMConfig:
        unknown = sorted(set(self.mode_weights) - MODE_KINDS)
        if unknown:
            raise ValueError(
                f"mode_weights: unknown kind(s) {unknown}; known: {sorted(MODE_KINDS)}"
            )
        if any(w < 0 for w in self.mode_weights.values()) or sum(self.mode_weights.values()) <= 0:
            raise ValueError("mode_weights: weights must be >= 0 with a positive sum")
        if self.provider == "ensemble":
            self._check_ensemble()
        elif self.models:
            raise ValueError(f"models: only provider ensemble takes a list, not {self.provider}")
        elif self.bandit is not None:
            raise ValueError("bandit: only provider ensemble uses a bandit")
        elif self.provider == "replay":
            if not self.replay_run:
                raise ValueError("replay_run: provider replay needs the run to replay (llm.replay_run=RUN)")
        elif self.provider != "offline":
            if self.model == "offline-mutator":
                raise ValueError(f"model: provider {self.provider} needs a model name")
            self.resolved_models()  # validate the single model now, at load
        return self

    def _check_ensemble(self) -> None:
        if not self.models:
            raise ValueError("models: provider ensemble needs at least one model")
        set_shortcuts = sorted(set(_SHORTCUTS) & self.model_fields_set)
        if set_shortcuts:
            raise ValueError(f"{set_shortcuts[0]}: set it per model under models for an ensemble")
        names = [m.model for m in self.models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"models: model names must be unique in an ensemble, repeated {dupes}")
        if sum(m.weight for m in self.models) <= 0:
            raise ValueError("models: at least one model needs a positive weight")

    def resolved_models(self) -> tuple[ModelSpec, ...]:
        """The network models this config describes: the list, or one from the shortcuts.

        Returns an empty tuple for ``offline``.
        """
        if self.provider in ("offline", "replay"):
            return ()
        if self.provider == "ensemble":
            return self.models
        fields = {name: getattr(self, name) for name in _SHORTCUTS}
        return (ModelSpec(provider=self.provider, **fields),)
