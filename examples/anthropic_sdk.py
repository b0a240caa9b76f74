"""The official Anthropic SDK against llmrelay's /v1/messages: any model group works.

    LLMRELAY_URL=http://127.0.0.1:4000 python examples/anthropic_sdk.py
"""

import os

import anthropic

url = os.environ.get("LLMRELAY_URL", "http://127.0.0.1:4000")
client = anthropic.Anthropic(base_url=url, api_key=os.environ.get("LLMRELAY_KEY", "anything"))

message = client.messages.create(
    model="demo-claude", max_tokens=200,
    messages=[{"role": "user", "content": "Hello from the Anthropic SDK"}])
print(message.content[0].text)
print("usage:", message.usage.input_tokens, "in,", message.usage.output_tokens, "out")
assert message.content[0].text
