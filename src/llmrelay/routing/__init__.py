"""Routing: which deployment serves a request, and what happens when it fails.

``strategies`` orders a model group's deployments for one request, ``retry`` says how long to wait
before the next attempt, ``circuit`` keeps a failing deployment out of rotation, ``state`` holds the
per-deployment statistics that survive a config reload, and ``health`` probes deployments in the
background. The router layer (``llmrelay.layers.router``) puts them together.
"""
