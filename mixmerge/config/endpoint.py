"""An OpenAI-compatible endpoint (OpenAI, vLLM, TGI, LiteLLM...): what the LLM judge, an LLM
translator and a teacher share."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, PositiveInt

from mixmerge.config.common import Strict


class PriceConfig(Strict):
    """US dollars per million tokens, as the provider bills them."""

    prompt: Annotated[float, Field(ge=0)]
    completion: Annotated[float, Field(ge=0)]


class EndpointConfig(Strict):
    """The key is read from the variable `api_key_env` names (null for keyless local servers);
    it is never written anywhere. Answers are cached under `cache_dir`, so that a rerun sends
    nothing and a killed run resumes."""

    base_url: str
    model: str
    api_key_env: str | None = "OPENAI_API_KEY"
    max_concurrency: PositiveInt = 8
    # Tries after the first, made by the openai client: it waits what the server's Retry-After
    # says, or backs off exponentially on its own fixed schedule (no base or cap to set here).
    max_retries: Annotated[int, Field(ge=0)] = 5
    timeout_s: Annotated[float, Field(gt=0)] = 120.0
    max_tokens: PositiveInt = 1024
    cache_dir: str  # each use its own: cache/judge, cache/translate, cache/teacher
    # With a price, the usage reported says what the tokens sent cost.
    price_per_million_tokens: PriceConfig | None = None
