"""Custom layers: config ``extra_layers`` ("module:factory") run just before the router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from llmrelay import Message, Relay
from llmrelay.context import RequestContext
from llmrelay.pipeline import LAYERS, Handler, layer_specs, load_factory
from llmrelay.types import ChatRequest, Chunk

SEEN: list[str] = []


def shout(services: Any, next: Handler) -> Handler:
    async def layer(request: ChatRequest, ctx: RequestContext) -> AsyncIterator[Chunk]:
        async for chunk in next(request, ctx):
            yield replace(chunk, text=chunk.text.upper())

    return layer


def record(services: Any, next: Handler) -> Handler:
    async def layer(request: ChatRequest, ctx: RequestContext) -> AsyncIterator[Chunk]:
        SEEN.append(request.model)
        async for chunk in next(request, ctx):
            yield chunk

    return layer


def disabled(services: Any, next: Handler) -> None:
    return None


def _settings(*layers: str) -> dict[str, Any]:
    return {"storage": {"url": "sqlite://:memory:"}, "providers": {"fake": {"kind": "fake"}},
            "models": {"m": [{"provider": "fake", "model": "echo"}]}, "extra_layers": list(layers)}


def test_layer_specs_insert_before_the_router() -> None:
    specs = layer_specs(["a.b:c", "d.e:f"])
    assert specs[:-3] == LAYERS[:-1]
    assert specs[-3:] == ("a.b:c", "d.e:f", LAYERS[-1])
    assert layer_specs() == LAYERS


def test_load_factory_takes_dotted_modules_and_builtins() -> None:
    assert load_factory(f"{__name__}:shout") is shout
    assert callable(load_factory("router:build"))


async def test_extra_layers_from_config_change_answers_and_stream() -> None:
    async with Relay(_settings(f"{__name__}:shout")) as relay:
        result = await relay.chat(model="m", messages=[Message.user("hello there")])
        assert result.text == "YOU SAID: HELLO THERE"
        text = "".join([c.text async for c in relay.stream(model="m", messages=[Message.user("abc")])])
        assert text == "YOU SAID: ABC"


async def test_extra_layers_run_in_order_and_may_opt_out() -> None:
    SEEN.clear()
    layers = (f"{__name__}:disabled", f"{__name__}:record", f"{__name__}:shout")
    async with Relay(_settings(*layers)) as relay:
        result = await relay.chat(model="m", messages=[Message.user("x")])
    assert SEEN == ["m"]
    assert result.text == "YOU SAID: X"


async def test_without_extra_layers_answers_are_untouched() -> None:
    async with Relay(_settings()) as relay:
        result = await relay.chat(model="m", messages=[Message.user("hello")])
    assert result.text == "You said: hello"
