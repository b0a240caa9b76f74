"""LangChain's ChatOpenAI against llmrelay.

    LLMRELAY_URL=http://127.0.0.1:4000 python examples/langchain_chat.py
"""

import os

from langchain_openai import ChatOpenAI

url = os.environ.get("LLMRELAY_URL", "http://127.0.0.1:4000")
llm = ChatOpenAI(base_url=f"{url}/v1", api_key=os.environ.get("LLMRELAY_KEY", "anything"), model="demo-fast")

reply = llm.invoke("Hello from LangChain")
print(reply.content)
for piece in llm.stream("Stream this, please"):
    print(piece.content, end="", flush=True)
print()
assert reply.content
