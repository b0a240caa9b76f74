"""Cost management: what each call costs, who spent it, and whether it may spend more.

- :mod:`.pricing`   prices from the bundled genai-prices data plus config overrides; ``apply(ctx)``
- :mod:`.tokens`    token counting (exact for tiktoken models, calibrated estimate otherwise)
- :mod:`.ledger`    one usage row per request, written in batches off the request path
- :mod:`.budgets`   reserve the worst case before a call, settle the real cost after
- :mod:`.alerts`    budget alerts to a webhook, the log, metrics and the audit log
- :mod:`.analytics` usage reports, trends, forecasts and money-saving recommendations
- :mod:`.export`    CSV, JSON and PDF exports of those reports
"""
