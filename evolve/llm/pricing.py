"""What one completion cost, from its token usage and the model's configured prices.

Prices are configured per model in USD per million tokens, because providers publish them that
way and change them often; nothing here hard-codes a price list.
"""

from __future__ import annotations

from dataclasses import dataclass

from evolve.llm.config import ModelSpec

__all__ = ["Usage", "cost_usd"]

_PER_TOKEN = 1e-6


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one completion, normalised across providers.

    ``input_tokens`` counts every prompt token, cached or not; ``cache_read_tokens`` and
    ``cache_write_tokens`` are the parts of it served from, or written to, the prompt cache.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


def cost_usd(usage: Usage, spec: ModelSpec) -> float:
    """Price ``usage`` at ``spec``'s rates; cache tokens default to the input price."""
    read_price = spec.price_cache_read_per_mtok
    write_price = spec.price_cache_write_per_mtok
    read_price = spec.price_in_per_mtok if read_price is None else read_price
    write_price = spec.price_in_per_mtok if write_price is None else write_price
    plain = max(usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens, 0)
    total = (
        plain * spec.price_in_per_mtok
        + usage.cache_read_tokens * read_price
        + usage.cache_write_tokens * write_price
        + usage.output_tokens * spec.price_out_per_mtok
    )
    return total * _PER_TOKEN
