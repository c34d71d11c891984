"""Model adapters, chosen by API name."""

from __future__ import annotations

import openai

from errand.config.settings import APIS
from errand.models.base import Model, ModelError


def create_model(
    api: str,
    model: str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    max_retries: int = 4,
    timeout_s: float = 600.0,
) -> Model:
    """Build a model client. ``base_url``/``api_key`` default to the environment
    (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``) as the ``openai`` package reads them."""
    client = openai.AsyncOpenAI(
        base_url=base_url,
        api_key=api_key or _api_key_or_placeholder(base_url),
        max_retries=max_retries,
        timeout=timeout_s,
    )
    if api == "chat":
        from errand.models.openai_chat import ChatModel

        chat: Model = ChatModel(client, model)
        return chat
    if api == "responses":
        from errand.models.openai_responses import ResponsesModel

        responses: Model = ResponsesModel(client, model)
        return responses
    raise ModelError(f"unknown model API {api!r}; use one of {', '.join(APIS)}")


def _api_key_or_placeholder(base_url: str | None) -> str | None:
    """Local servers (Ollama, llama.cpp, vLLM) accept any key; the openai package
    insists on one, so supply a placeholder when a base URL is set and no key is."""
    import os

    if os.environ.get("OPENAI_API_KEY"):
        return None
    if base_url or os.environ.get("OPENAI_BASE_URL"):
        return "not-needed"
    return None


__all__ = ["Model", "ModelError", "create_model"]
