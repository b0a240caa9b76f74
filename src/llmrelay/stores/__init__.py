"""Persistent stores and their schema: numbered migrations for SQLite and PostgreSQL, the runner
behind ``llmrelay db upgrade`` / ``db status``, the start-up check, and the PostgreSQL key store.

    from llmrelay.stores.migrate import upgrade, schema_status
    await upgrade("postgresql://llmrelay@db/llmrelay")      # -> the versions applied
"""
