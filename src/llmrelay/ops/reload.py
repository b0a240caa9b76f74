"""Hot reload of the config file: on a change of the file, on SIGHUP, or on ``POST /admin/reload``.

    reloader = ConfigReloader(relay)          # the file is relay.settings.source
    await reloader.start()                    # polls the file every second; SIGHUP reloads
    result = await reloader.reload("api")     # what /admin/reload calls
    await reloader.stop()

The procedure (:meth:`ConfigReloader.reload`): read and validate the new file; if it is invalid,
the running settings stay, and the problems are logged, audited and kept in :attr:`status` (which
``/health/ready`` shows). If it is valid, settings that cannot change in a running process
(``server.host/port/workers``, ``storage.url``) keep their running values and are reported as
needing a restart; the rest is swapped in by :meth:`Relay.reload`: requests in flight finish on the
old generation and providers whose config is unchanged keep their connection pools.

The file is polled (mtime, size and a SHA-256 of its bytes) rather than watched with inotify: it
works on every filesystem, including ConfigMap mounts whose symlinks are swapped, and costs one
``stat`` a second. A change is only acted on once the file is stable for one short settle delay,
so an editor's half-written file is not read.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ConfigProblems, Settings, load_settings
from ..relay import Relay

log = logging.getLogger("llmrelay.ops.reload")

# Settings a running process cannot adopt: the listening socket, the process count, the ledger DB.
RESTART_ONLY: tuple[tuple[str, str], ...] = (
    ("server", "host"), ("server", "port"), ("server", "workers"), ("storage", "url"),
)

Fingerprint = tuple[int, int, str]


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What one reload attempt did."""

    ok: bool
    trigger: str
    changed: bool = False
    generation: int = 0
    problems: tuple[str, ...] = ()
    restart_required: tuple[str, ...] = ()
    at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "trigger": self.trigger, "changed": self.changed, "generation": self.generation,
                "problems": list(self.problems), "restart_required": list(self.restart_required), "at": self.at}


def fingerprint(path: Path) -> Fingerprint | None:
    """(mtime_ns, size, sha256) of the file, or None when it cannot be read right now."""
    try:
        st = path.stat()
        data = path.read_bytes()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, hashlib.sha256(data).hexdigest()


def restart_only_changes(running: Settings, new: Settings) -> tuple[Settings, tuple[str, ...]]:
    """``new`` with the running values of the restart-only settings, and what differed."""
    notes: list[str] = []
    updates: dict[str, dict[str, Any]] = {}
    for section, name in RESTART_ONLY:
        old_v, new_v = getattr(getattr(running, section), name), getattr(getattr(new, section), name)
        if old_v != new_v:
            notes.append(f"{section}.{name}: {old_v!r} -> {new_v!r} (takes effect after a restart)")
            updates.setdefault(section, {})[name] = old_v
    if not updates:
        return new, ()
    patched = new.model_copy(update={
        section: getattr(new, section).model_copy(update=values) for section, values in updates.items()
    })
    return patched, tuple(notes)


class ConfigReloader:
    """Watches the relay's config file and reloads it; one reload runs at a time."""

    def __init__(
        self,
        relay: Relay,
        path: str | Path | None = None,
        *,
        prepare: Callable[[Settings], Settings] | None = None,
        interval_s: float = 1.0,
        settle_s: float = 0.05,
    ) -> None:
        self.relay = relay
        source = path if path is not None else relay.settings.source
        self.path: Path | None = Path(source) if source and Path(source).is_file() else None
        # prepare: what the edge did to the file's settings at start (e.g. the env master key).
        self.prepare = prepare or (lambda s: s)
        self.interval_s, self.settle_s = interval_s, settle_s
        self.generation = 0
        self.last: ReloadResult | None = None
        # The latest failure, kept until a reload succeeds (shown by /health/ready).
        self.error: ReloadResult | None = None
        self.restart_required: tuple[str, ...] = ()
        self._lock = asyncio.Lock()
        self._seen = fingerprint(self.path) if self.path else None
        self._task: asyncio.Task[None] | None = None
        self._sighup = False

    # ---- status ----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """For readiness and the dashboard: the config error and the pending restart, if any."""
        return {
            "config_file": str(self.path) if self.path else None,
            "config_generation": self.generation,
            "config_error": list(self.error.problems) if self.error else None,
            "restart_required": list(self.restart_required),
            "last_reload": self.last.to_json() if self.last else None,
        }

    # ---- the procedure ---------------------------------------------------------------------------

    async def reload(self, trigger: str = "api") -> ReloadResult:
        """Validate the file and swap it in; never raises for a bad config (see the result)."""
        async with self._lock:
            if self.path is None:
                return self._failed(trigger, ("no config file: the gateway was started without --config",))
            self._seen = fingerprint(self.path)
            try:
                new = self.prepare(load_settings(self.path))
            except ConfigProblems as exc:
                return self._failed(trigger, tuple(exc.problems))
            running = self.relay.settings
            new, restart = restart_only_changes(running, new)
            changed = new != running
            if changed:
                try:
                    await self.relay.reload(new)
                except Exception as exc:  # a component refused the new settings while building
                    log.exception("reload failed while building the new settings")
                    return self._failed(trigger, (f"building the new settings failed: {exc}",))
                self.generation += 1
                self._after_swap(new)
            return self._succeeded(trigger, changed, restart)

    def _after_swap(self, new: Settings) -> None:
        from .logging import HANDLER_NAME, configure_logging

        # Follow logging changes only where llmrelay configured logging itself (the server).
        if any(h.get_name() == HANDLER_NAME for h in logging.getLogger("llmrelay").handlers):
            configure_logging(new.logging)

    def _succeeded(self, trigger: str, changed: bool, restart: tuple[str, ...]) -> ReloadResult:
        result = ReloadResult(True, trigger, changed, self.generation, (), restart)
        self.last, self.error, self.restart_required = result, None, restart
        fields = {"trigger": trigger, "changed": changed, "generation": self.generation,
                  "restart_required": list(restart)}
        log.info("config reloaded" if changed else "config unchanged", extra={"fields": fields})
        for note in restart:
            log.warning("config change needs a restart: %s", note)
        if changed:
            self._audit("config.reload", fields)
        return result

    def _failed(self, trigger: str, problems: tuple[str, ...]) -> ReloadResult:
        result = ReloadResult(False, trigger, False, self.generation, problems, self.restart_required)
        self.last = self.error = result
        fields = {"trigger": trigger, "problems": list(problems), "generation": self.generation}
        log.error("config reload refused; the running config stays", extra={"fields": fields})
        self._audit("config.reload_failed", fields)
        return result

    def _audit(self, kind: str, data: dict[str, Any]) -> None:
        audit = self.relay.services.audit
        record = getattr(audit, "record", None)
        if record is None:
            return
        try:
            record(kind, data)
        except Exception:  # the audit log must never break a reload
            log.exception("could not audit %s", kind)

    # ---- triggers --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Poll the file, and reload on SIGHUP (main thread of a Unix process only)."""
        if self.path is None or self._task is not None:
            return
        self._task = asyncio.create_task(self._watch(), name="llmrelay-config-watch")
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError, AttributeError):
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
            self._sighup = True

    def _on_sighup(self) -> None:
        log.info("SIGHUP: reloading the config")
        asyncio.get_running_loop().create_task(self.reload("sighup"))

    async def stop(self) -> None:
        if self._sighup:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            self._sighup = False
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watch(self) -> None:
        assert self.path is not None
        while True:
            await asyncio.sleep(self.interval_s)
            now = fingerprint(self.path)
            if now is None or now == self._seen:
                continue
            # Wait until the writer is done: the same fingerprint twice, settle_s apart.
            await asyncio.sleep(self.settle_s)
            if fingerprint(self.path) != now:
                continue
            try:
                await self.reload("file")
            except Exception:  # keep watching whatever happened
                log.exception("config reload from the file watcher failed")

    async def __aenter__(self) -> ConfigReloader:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
