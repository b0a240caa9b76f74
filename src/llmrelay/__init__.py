"""llmrelay: every LLM provider behind one API; every call accountable for its cost, safety and speed.

    from llmrelay import Relay, Message
    relay = Relay.from_file("llmrelay.yaml")
    result = await relay.chat(model="fast", messages=[Message.user("Hello")])
"""

from .__about__ import __version__
from .config import Settings, load_settings
from .context import RequestContext
from .errors import (
    AuthenticationError,
    BudgetExceededError,
    ContentPolicyError,
    ContextWindowExceededError,
    InvalidRequestError,
    LLMRelayError,
    ModelNotFoundError,
    ProviderError,
    RateLimitError,
)
from .relay import Relay, SyncRelay
from .types import (
    ChatRequest,
    ChatResult,
    Chunk,
    ImagePart,
    Message,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    Usage,
)

__all__ = [
    "AuthenticationError",
    "BudgetExceededError",
    "ChatRequest",
    "ChatResult",
    "Chunk",
    "ContentPolicyError",
    "ContextWindowExceededError",
    "ImagePart",
    "InvalidRequestError",
    "LLMRelayError",
    "Message",
    "ModelNotFoundError",
    "ProviderError",
    "RateLimitError",
    "Relay",
    "RequestContext",
    "Settings",
    "SyncRelay",
    "TextPart",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "__version__",
    "load_settings",
]
