"""The official OpenAI SDK against llmrelay: only the base URL changes.

    llmrelay serve --demo &
    LLMRELAY_URL=http://127.0.0.1:4000 python examples/openai_sdk.py
"""

import os

from openai import OpenAI

url = os.environ.get("LLMRELAY_URL", "http://127.0.0.1:4000")
client = OpenAI(base_url=f"{url}/v1", api_key=os.environ.get("LLMRELAY_KEY", "anything"))

raw = client.chat.completions.with_raw_response.create(
    model="demo-fast", messages=[{"role": "user", "content": "Hello from the OpenAI SDK"}])
answer = raw.parse()
print(answer.choices[0].message.content)
print("provider:", raw.headers["x-llmrelay-provider"], "cost USD:", raw.headers["x-llmrelay-cost-usd"])
assert answer.choices[0].message.content
