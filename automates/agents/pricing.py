"""The one price table: dollars per million tokens, per model family.

Used by the LLM facade to cost each call, and by the CLI runner to estimate a run's spending
from the usage of each assistant message as it streams (the CLI prints its own total only in
the final result event, too late to stop a runaway run). Prices are list prices; a model not
listed is costed at the dearest family, so that a budget errs on the safe side.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# Cache writes cost 1.25x the input price, cache reads 0.1x (Anthropic's published ratios).
CACHE_WRITE_FACTOR = 1.25
CACHE_READ_FACTOR = 0.1


class ModelPrice(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)

    def cost_usd(self, usage: Mapping[str, Any]) -> float:
        """The cost of one usage block (Messages API / stream-json `usage` shape)."""

        def tokens(key: str) -> int:
            value = usage.get(key)
            return value if isinstance(value, int) else 0

        input_cost = (
            tokens("input_tokens")
            + CACHE_WRITE_FACTOR * tokens("cache_creation_input_tokens")
            + CACHE_READ_FACTOR * tokens("cache_read_input_tokens")
        ) * self.input_per_mtok
        return (input_cost + tokens("output_tokens") * self.output_per_mtok) / 1_000_000


# Longest matching prefix wins, so "claude-opus-4-5" is not priced as "claude-opus-4".
PRICES: Mapping[str, ModelPrice] = MappingProxyType(
    {
        "claude-opus-4-5": ModelPrice(input_per_mtok=5.0, output_per_mtok=25.0),
        "claude-opus-4-6": ModelPrice(input_per_mtok=5.0, output_per_mtok=25.0),
        "claude-opus-4": ModelPrice(input_per_mtok=15.0, output_per_mtok=75.0),
        "claude-sonnet-4": ModelPrice(input_per_mtok=3.0, output_per_mtok=15.0),
        "claude-3-7-sonnet": ModelPrice(input_per_mtok=3.0, output_per_mtok=15.0),
        "claude-haiku-4-5": ModelPrice(input_per_mtok=1.0, output_per_mtok=5.0),
        "claude-3-5-haiku": ModelPrice(input_per_mtok=0.8, output_per_mtok=4.0),
        # The CLI's aliases.
        "opus": ModelPrice(input_per_mtok=5.0, output_per_mtok=25.0),
        "sonnet": ModelPrice(input_per_mtok=3.0, output_per_mtok=15.0),
        "haiku": ModelPrice(input_per_mtok=1.0, output_per_mtok=5.0),
    }
)
UNKNOWN_MODEL_PRICE = max(PRICES.values(), key=lambda price: price.output_per_mtok)


def price_for(model: str) -> ModelPrice:
    matches = [prefix for prefix in PRICES if model.startswith(prefix)]
    return PRICES[max(matches, key=len)] if matches else UNKNOWN_MODEL_PRICE


def cost_usd(model: str, usage: Mapping[str, Any]) -> float:
    return price_for(model).cost_usd(usage)
