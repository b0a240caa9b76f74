"""llmrelay as a library: a Relay built from a config dict, no server.

The scripted fake provider stands in for a real one; swap the providers section for
``{"openai": {"kind": "openai", "api_key": "${OPENAI_API_KEY}"}}`` to call OpenAI.

    python examples/library.py
"""

import asyncio

from llmrelay import Message, Relay

CONFIG = {
    "storage": {"url": "sqlite://:memory:"},
    "providers": {"fake": {"kind": "fake"}},
    "models": {"fast": [{"provider": "fake", "model": "echo"}]},
}


async def main() -> None:
    async with Relay(CONFIG) as relay:
        result = await relay.chat(model="fast", messages=[Message.user("Hello, library")])
        print(result.text, result.usage)
        async for chunk in relay.stream(model="fast", messages=[Message.user("Stream me")]):
            print(chunk.text, end="", flush=True)
        print()
        assert result.text == "You said: Hello, library"


asyncio.run(main())
