"""The layers of the request path, one module each; their order is llmrelay.pipeline.LAYERS."""
