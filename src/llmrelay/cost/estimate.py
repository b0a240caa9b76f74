"""The worst-case cost of a request before it is sent, for budget reservations.

Prompt tokens are counted (exactly for tiktoken models) and the answer is assumed to use all of
``max_tokens``, else the model's output limit, else ``pricing.default_max_output_tokens``. For a
model group the most expensive deployment counts, since the router may fail over to it.

    est = CostEstimator(engine, TokenCounter(), settings)
    est.worst_case(request)      # USD
"""

from __future__ import annotations

from ..config import Deployment, Settings
from ..types import ChatRequest, EmbeddingRequest, Usage
from .pricing import PricingEngine
from .tokens import TokenCounter


class CostEstimator:
    def __init__(self, engine: PricingEngine, counter: TokenCounter, settings: Settings) -> None:
        self.engine = engine
        self.counter = counter
        self.settings = settings

    def deployments(self, model: str) -> tuple[Deployment, ...]:
        deps = self.settings.models.get(model)
        if deps:
            return tuple(deps)
        prov, sep, upstream = model.partition("/")
        if sep and prov in self.settings.providers:
            return (Deployment(provider=prov, model=upstream),)
        return ()

    def worst_case(self, request: ChatRequest) -> float:
        worst = 0.0
        cfg = self.settings.pricing
        for dep in self.deployments(request.model):
            kind = self.settings.providers[dep.provider].kind
            prices = self.engine.prices(dep.provider, kind, dep.model)
            if prices is None:
                continue
            prompt = self.counter.count_request(request, dep.model)
            if not self.counter.exact(dep.model):
                prompt = int(prompt * cfg.estimate_margin) + 1
            out = request.max_tokens or prices.max_output_tokens or cfg.default_max_output_tokens
            out *= max(1, request.n)
            worst = max(worst, prices.cost(Usage(input_tokens=prompt, output_tokens=out)))
        return worst

    def embedding_worst_case(self, request: EmbeddingRequest) -> float:
        """An embedding call's cost before it is made: its input, counted as a prompt is
        (embeddings have no output tokens); the most expensive deployment counts."""
        worst = 0.0
        for dep in self.deployments(request.model):
            prices = self.engine.prices(dep.provider, self.settings.providers[dep.provider].kind, dep.model)
            if prices is None:
                continue
            tokens = sum(self.counter.count_text(text, dep.model) for text in request.input)
            if not self.counter.exact(dep.model):
                tokens = int(tokens * self.settings.pricing.estimate_margin) + 1
            worst = max(worst, prices.cost(Usage(input_tokens=tokens)))
        return worst

    def prompt_cost(self, request: ChatRequest, provider: str | None, kind: str | None, model: str | None) -> float:
        """What the prompt alone costs: billed even when the answer is cut off."""
        if model is None:
            return 0.0
        prices = self.engine.prices(provider, kind, model)
        if prices is None:
            return 0.0
        return prices.cost(Usage(input_tokens=self.counter.count_request(request, model)))
