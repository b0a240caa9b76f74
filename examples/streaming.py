"""A streamed answer through the OpenAI SDK, with the cost in the final usage chunk.

    LLMRELAY_URL=http://127.0.0.1:4000 python examples/streaming.py
"""

import os

from openai import OpenAI

url = os.environ.get("LLMRELAY_URL", "http://127.0.0.1:4000")
client = OpenAI(base_url=f"{url}/v1", api_key=os.environ.get("LLMRELAY_KEY", "anything"))

stream = client.chat.completions.create(
    model="demo-fast", stream=True, stream_options={"include_usage": True},
    messages=[{"role": "user", "content": "Tell me a short story"}])
text = []
usage = None
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        text.append(chunk.choices[0].delta.content)
        print(chunk.choices[0].delta.content, end="", flush=True)
    if chunk.usage is not None:
        usage = chunk.usage
print()
print("tokens:", usage.total_tokens if usage else None, "cost USD:", getattr(usage, "cost", None))
assert text and usage is not None
