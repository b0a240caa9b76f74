"""The HTTP gateway: OpenAI- and Anthropic-compatible edges, the admin API and ops endpoints.

    from llmrelay.server.app import create_app
"""
