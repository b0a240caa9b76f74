"""The schema of the shared database, as numbered migrations (append only; never edit one that
has shipped). Each has the statements for SQLite and for PostgreSQL.

Migration 1 is the baseline every store used to create for itself: usage ledger and daily
roll-ups (llmrelay.cost), virtual keys (llmrelay.keys), the audit log (llmrelay.safety) and, on
SQLite, the response cache table (Redis is the shared cache on PostgreSQL deployments). It uses
``IF NOT EXISTS`` so a database made by an older release is adopted as version 1 unchanged.

To add a migration, append one:

    Migration(2, "ledger: region column",
              sqlite=("ALTER TABLE usage_ledger ADD COLUMN region TEXT",),
              postgres=("ALTER TABLE usage_ledger ADD COLUMN IF NOT EXISTS region TEXT",))
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sqlite: tuple[str, ...]
    postgres: tuple[str, ...]
    # Skip the statements (still recording the version) when this table exists: a store that
    # creates its own tables may already have made the new shape in a database never migrated.
    unless_table: str | None = None

    def statements(self, dialect: str) -> tuple[str, ...]:
        return self.sqlite if dialect == "sqlite" else self.postgres


_LEDGER = (
    "CREATE TABLE IF NOT EXISTS usage_ledger (day TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL, request_id TEXT,"
    " status TEXT, error_code TEXT, key_id TEXT, user_id TEXT, team TEXT, session TEXT, model_group TEXT,"
    " provider TEXT, model TEXT, input_tokens BIGINT, output_tokens BIGINT, cache_read_tokens BIGINT,"
    " cache_write_tokens BIGINT, reasoning_tokens BIGINT, cost_usd DOUBLE PRECISION, cost_saved_usd DOUBLE PRECISION,"
    " unpriced INTEGER, latency_ms DOUBLE PRECISION, ttft_ms DOUBLE PRECISION, cache_status TEXT, joined INTEGER,"
    " prompt_hash TEXT, prefix_hash TEXT, prefix_tokens BIGINT)",
    "CREATE INDEX IF NOT EXISTS usage_ts ON usage_ledger (ts)",
    "CREATE INDEX IF NOT EXISTS usage_key_ts ON usage_ledger (key_id, ts)",
    "CREATE INDEX IF NOT EXISTS usage_user_ts ON usage_ledger (user_id, ts)",
    "CREATE INDEX IF NOT EXISTS usage_team_ts ON usage_ledger (team, ts)",
    "CREATE INDEX IF NOT EXISTS usage_session_ts ON usage_ledger (session, ts)",
    "CREATE INDEX IF NOT EXISTS usage_model_ts ON usage_ledger (model, ts)",
    "CREATE INDEX IF NOT EXISTS usage_request ON usage_ledger (request_id)",
    "CREATE INDEX IF NOT EXISTS usage_prompt ON usage_ledger (prompt_hash, ts)",
    "CREATE INDEX IF NOT EXISTS usage_prefix ON usage_ledger (prefix_hash, ts)",
    "CREATE TABLE IF NOT EXISTS usage_daily (day TEXT NOT NULL, key_id TEXT NOT NULL, user_id TEXT NOT NULL,"
    " team TEXT NOT NULL, model_group TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL, status TEXT NOT NULL,"
    " requests BIGINT NOT NULL, input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL,"
    " cache_read_tokens BIGINT NOT NULL, cache_write_tokens BIGINT NOT NULL, reasoning_tokens BIGINT NOT NULL,"
    " cost_usd DOUBLE PRECISION NOT NULL, cost_saved_usd DOUBLE PRECISION NOT NULL, unpriced BIGINT NOT NULL,"
    " errors BIGINT NOT NULL, cache_hits BIGINT NOT NULL, latency_ms DOUBLE PRECISION NOT NULL,"
    " PRIMARY KEY (day, key_id, user_id, team, model_group, provider, model, status))",
    "CREATE INDEX IF NOT EXISTS usage_daily_day ON usage_daily (day)",
)

_AUDIT = (
    "CREATE TABLE IF NOT EXISTS audit_log (id BIGINT PRIMARY KEY, ts DOUBLE PRECISION NOT NULL, kind TEXT NOT NULL,"
    " subject TEXT, data TEXT NOT NULL, prev TEXT NOT NULL, mac TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS audit_log_subject ON audit_log (subject)",
    "CREATE TABLE IF NOT EXISTS audit_subjects (user_id TEXT PRIMARY KEY, salt TEXT NOT NULL, pseudonym TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_content (entry_id BIGINT PRIMARY KEY, subject TEXT, ts DOUBLE PRECISION NOT NULL,"
    " content TEXT NOT NULL)",
)

# "user" is reserved in PostgreSQL, hence quoted (SQLite accepts the quotes and the same name).
_KEYS = (
    "CREATE TABLE IF NOT EXISTS virtual_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE,"
    ' prefix TEXT NOT NULL, "user" TEXT, team TEXT, models TEXT NOT NULL DEFAULT \'\', budget_usd DOUBLE PRECISION,'
    " budget_period TEXT, rpm INTEGER, tpm INTEGER, policy TEXT, priority TEXT NOT NULL DEFAULT 'normal',"
    " expires_at DOUBLE PRECISION, revoked INTEGER NOT NULL DEFAULT 0, created_at DOUBLE PRECISION NOT NULL)",
)

_CACHE_SQLITE = (
    "CREATE TABLE IF NOT EXISTS llmrelay_cache (key TEXT PRIMARY KEY, grp TEXT NOT NULL, value BLOB NOT NULL,"
    " expires_at REAL NOT NULL, created_at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS llmrelay_cache_grp ON llmrelay_cache (grp)",
    "CREATE INDEX IF NOT EXISTS llmrelay_cache_created ON llmrelay_cache (created_at)",
)

_MEASURES = ("requests BIGINT NOT NULL, input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL,"
             " cache_read_tokens BIGINT NOT NULL, cache_write_tokens BIGINT NOT NULL, reasoning_tokens BIGINT NOT NULL,"
             " cost_usd DOUBLE PRECISION NOT NULL, cost_saved_usd DOUBLE PRECISION NOT NULL, unpriced BIGINT NOT NULL,"
             " errors BIGINT NOT NULL, cache_hits BIGINT NOT NULL, latency_ms DOUBLE PRECISION NOT NULL")
_SUMS = ("SUM(requests), SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens), SUM(cache_write_tokens),"
         " SUM(reasoning_tokens), SUM(cost_usd), SUM(cost_saved_usd), SUM(unpriced), SUM(errors), SUM(cache_hits),"
         " SUM(latency_ms)")


def _narrow_rollup(table: str, dims: str) -> tuple[str, ...]:
    """A narrow daily roll-up, filled from the wide v1 table renamed to ``usage_daily_v1``."""
    cols = ", ".join(f"{d} TEXT NOT NULL" for d in dims.split(", "))
    return (f"CREATE TABLE IF NOT EXISTS {table} ({cols}, {_MEASURES}, PRIMARY KEY ({dims}))",
            f"INSERT INTO {table} SELECT {dims}, {_SUMS} FROM usage_daily_v1 GROUP BY {dims}")


# The ledger (llmrelay.cost.ledger_sql.ROLLUPS) replaced the one wide roll-up by three narrow ones;
# the old figures are re-aggregated so reports over past days keep their totals.
_NARROW_ROLLUPS = (
    "DROP INDEX IF EXISTS usage_daily_day",
    "ALTER TABLE usage_daily RENAME TO usage_daily_v1",
    *_narrow_rollup("usage_daily", "day, model_group, provider, model, status"),
    *_narrow_rollup("usage_daily_key", "day, key_id, team"),
    *_narrow_rollup("usage_daily_user", "day, user_id, team"),
    "DROP TABLE usage_daily_v1",
)

def _repeats_backfill(column: str, kind: str) -> tuple[str, ...]:
    """Repeats of ``column`` within a day of the previous identical request, from the raw rows."""
    part = f"PARTITION BY {column}, COALESCE(model, ''), COALESCE(provider, '')"
    return (
        f"INSERT INTO usage_daily_repeats SELECT day, '{kind}', h, m, p, COUNT(*), SUM(c), SUM(i), SUM(r), SUM(x)"
        f" FROM (SELECT day, {column} AS h, COALESCE(model, '') AS m, COALESCE(provider, '') AS p,"
        " COALESCE(cost_usd, 0) AS c, COALESCE(input_tokens, 0) AS i, COALESCE(cache_read_tokens, 0) AS r,"
        f" COALESCE(prefix_tokens, 0) AS x, ts - LAG(ts) OVER ({part} ORDER BY ts) AS gap"
        f" FROM usage_ledger WHERE {column} IS NOT NULL AND status = 'ok') AS s"
        " WHERE gap <= 86400 GROUP BY day, h, m, p",
        f"INSERT INTO usage_prompts_seen SELECT {column}, '{kind}', COALESCE(model, ''), COALESCE(provider, ''),"
        f" MAX(ts) FROM usage_ledger WHERE {column} IS NOT NULL AND status = 'ok'"
        " AND ts >= (SELECT MAX(ts) FROM usage_ledger) - 86400"
        f" GROUP BY {column}, COALESCE(model, ''), COALESCE(provider, '')",
    )


# The ledger (llmrelay.cost.ledger_sql / ledger_repeats) answers "by user, day" from a roll-up keyed
# exactly so, and recommendations from a daily roll-up of repeated prompts; both are rebuilt from
# what the database holds (DELETE first: the ledger may have made the tables itself already).
_USER_DAY_AND_REPEATS = (
    f"CREATE TABLE IF NOT EXISTS usage_daily_user_day (day TEXT NOT NULL, user_id TEXT NOT NULL, {_MEASURES},"
    " PRIMARY KEY (day, user_id))",
    "DELETE FROM usage_daily_user_day",
    f"INSERT INTO usage_daily_user_day SELECT day, user_id, {_SUMS} FROM usage_daily_user GROUP BY day, user_id",
    "CREATE TABLE IF NOT EXISTS usage_prompts_seen (hash TEXT NOT NULL, kind TEXT NOT NULL, model TEXT NOT NULL,"
    " provider TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL, PRIMARY KEY (hash, kind, model, provider))",
    "CREATE INDEX IF NOT EXISTS usage_prompts_seen_ts ON usage_prompts_seen (ts)",
    "CREATE TABLE IF NOT EXISTS usage_daily_repeats (day TEXT NOT NULL, kind TEXT NOT NULL, hash TEXT NOT NULL,"
    " model TEXT NOT NULL, provider TEXT NOT NULL, repeats BIGINT NOT NULL, cost_usd DOUBLE PRECISION NOT NULL,"
    " input_tokens BIGINT NOT NULL, cache_read_tokens BIGINT NOT NULL, prefix_tokens BIGINT NOT NULL,"
    " PRIMARY KEY (day, kind, hash, model, provider))",
    "DELETE FROM usage_daily_repeats",
    "DELETE FROM usage_prompts_seen",
    *_repeats_backfill("prompt_hash", "prompt"),
    *_repeats_backfill("prefix_hash", "prefix"),
)

def _coarse_rollup(table: str, grain: str, label: str, daily: str, dims: str) -> tuple[str, ...]:
    """A weekly or monthly roll-up keyed by ``grain`` (its ``label`` SQL from the day label), rebuilt
    from its daily one."""
    cols = ", ".join(f"{d} TEXT NOT NULL" for d in dims.split(", "))
    return (f"CREATE TABLE IF NOT EXISTS {table} ({grain} TEXT NOT NULL, {cols}, {_MEASURES},"
            f" PRIMARY KEY ({grain}, {dims}))",
            f"DELETE FROM {table}",
            f"INSERT INTO {table} SELECT {label}, {dims}, {_SUMS} FROM {daily} GROUP BY {label}, {dims}")


def _coarse_rollups(week: str) -> tuple[str, ...]:
    """``week``: the dialect's SQL for a day label's ISO week (its Monday's day label)."""
    out: tuple[str, ...] = ()
    for grain, label in (("week", week), ("month", "substr(day, 1, 7)")):
        out += (*_coarse_rollup(f"usage_{grain}ly", grain, label, "usage_daily", "model_group, provider, model, status"),
                *_coarse_rollup(f"usage_{grain}ly_key", grain, label, "usage_daily_key", "key_id, team"),
                *_coarse_rollup(f"usage_{grain}ly_user_{grain}", grain, label, "usage_daily_user_day", "user_id"),
                *_coarse_rollup(f"usage_{grain}ly_user", grain, label, "usage_daily_user", "user_id, team"))
    return out


# The ledger (llmrelay.cost.ledger_sql.COARSE_ROLLUPS) answers whole-day windows from whole months,
# whole weeks and the days left. Rebuilt from the daily roll-ups (which outlive retention, so hold
# the whole history); DELETE first: a ledger that opened before this migration filled them itself.
_COARSE_SQLITE = _coarse_rollups("date(day, 'weekday 0', '-6 days')")
_COARSE_POSTGRES = _coarse_rollups("to_char(date_trunc('week', day::date), 'YYYY-MM-DD')")

# Indexes on random values that no query reads: each row put one random page of each in the
# batch's transaction, so the ledger's per-row write cost grew with the table (issue #11). Lookups
# by request id are not a query the gateway makes; repeated prompts are read from
# usage_daily_repeats and usage_prompts_seen (its own primary key), never from the raw rows.
_UNREAD_INDEXES = tuple(f"DROP INDEX IF EXISTS {name}" for name in ("usage_request", "usage_prompt", "usage_prefix"))

# The audit chain's table rebuilt (SQLite) with its id as the rowid (INTEGER PRIMARY KEY; BIGINT
# PRIMARY KEY kept a second b-tree, a unique index on id) and the subject index partial (lookups
# are always ``subject = ?``; most entries have no subject): one b-tree per anonymous entry instead
# of three (issue #11: ~6.5 -> ~4.7 us per inserted row). Every entry is copied as it was, in id
# order; the MACs cover the values, not the storage type, so the chain verifies unchanged.
# PostgreSQL keeps its table (no rowid there) and gets the partial index.
_AUDIT_COLUMNS = "id, ts, kind, subject, data, prev, mac"
_AUDIT_SUBJECT_PARTIAL = "CREATE INDEX IF NOT EXISTS audit_log_subject ON audit_log (subject) WHERE subject IS NOT NULL"
_AUDIT_REBUILD_SQLITE = (
    "CREATE TABLE audit_log_v7 (id INTEGER PRIMARY KEY, ts DOUBLE PRECISION NOT NULL, kind TEXT NOT NULL,"
    " subject TEXT, data TEXT NOT NULL, prev TEXT NOT NULL, mac TEXT NOT NULL)",
    f"INSERT INTO audit_log_v7 ({_AUDIT_COLUMNS}) SELECT {_AUDIT_COLUMNS} FROM audit_log ORDER BY id",
    "DROP TABLE audit_log",  # its subject index goes with it
    "ALTER TABLE audit_log_v7 RENAME TO audit_log",
    _AUDIT_SUBJECT_PARTIAL,
)
_AUDIT_PARTIAL_POSTGRES = ("DROP INDEX IF EXISTS audit_log_subject", _AUDIT_SUBJECT_PARTIAL)

# The ledger's user, session and team indexes made partial: most rows have none of them (anonymous
# keys, no session header), and every query on them is ``user_id = ?`` / ``session = ?`` /
# ``team = ?`` (reports, privacy export and erasure), which implies NOT NULL, so SQLite and
# PostgreSQL still read them. A row without them skips three b-tree inserts (issue #11: ~0.65 us
# each of ~8 per inserted row). The ledger creates the same user and session indexes itself
# (llmrelay.cost.ledger_sql.SCHEMA; the team one only ever came from migration 1).
_LEDGER_PARTIAL = tuple(
    stmt for name, col in (("usage_user_ts", "user_id"), ("usage_session_ts", "session"), ("usage_team_ts", "team"))
    for stmt in (f"DROP INDEX IF EXISTS {name}",
                 f"CREATE INDEX IF NOT EXISTS {name} ON usage_ledger ({col}, ts) WHERE {col} IS NOT NULL"))

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "baseline: usage ledger, virtual keys, audit log, cache (SQLite)",
              sqlite=(*_LEDGER, *_KEYS, *_AUDIT, *_CACHE_SQLITE),
              postgres=(*_LEDGER, *_KEYS, *_AUDIT)),
    Migration(2, "virtual keys: index for listings in creation order",
              sqlite=("CREATE INDEX IF NOT EXISTS virtual_keys_created ON virtual_keys (created_at)",),
              postgres=("CREATE INDEX IF NOT EXISTS virtual_keys_created ON virtual_keys (created_at)",)),
    Migration(3, "usage ledger: narrow daily roll-ups (model, key, user)",
              sqlite=_NARROW_ROLLUPS, postgres=_NARROW_ROLLUPS, unless_table="usage_daily_key"),
    # SQLite has no ADD COLUMN IF NOT EXISTS: there the ledger adds ``estimated`` when it opens
    # (llmrelay.cost.ledger_sql.ADDED_COLUMNS), as it does on a table it made itself.
    Migration(4, "usage ledger: user-day and repeated-prompt roll-ups, estimated-usage flag",
              sqlite=_USER_DAY_AND_REPEATS,
              postgres=(*_USER_DAY_AND_REPEATS,
                        "ALTER TABLE usage_ledger ADD COLUMN IF NOT EXISTS estimated INTEGER")),
    Migration(5, "usage ledger: weekly and monthly roll-ups (model, key, user), filled from the daily ones",
              sqlite=_COARSE_SQLITE, postgres=_COARSE_POSTGRES),
    Migration(6, "usage ledger: drop the request id and prompt/prefix hash indexes no query reads",
              sqlite=_UNREAD_INDEXES, postgres=_UNREAD_INDEXES),
    Migration(7, "audit log: id as the rowid (SQLite), subject index only over entries with a subject",
              sqlite=_AUDIT_REBUILD_SQLITE, postgres=_AUDIT_PARTIAL_POSTGRES),
    Migration(8, "usage ledger: user, session and team indexes only over rows with one",
              sqlite=_LEDGER_PARTIAL, postgres=_LEDGER_PARTIAL),
)

LATEST = MIGRATIONS[-1].version
