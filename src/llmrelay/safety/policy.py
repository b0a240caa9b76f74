"""Safety policies: what to do, per category, with what a detector found.

Four levels are templates (DESIGN.md, "Defaults that matter"):

- ``off``: nothing is inspected;
- ``low``: detect and flag, never block or redact (the default);
- ``moderate``: redact PII and secrets, block clear injections, abuse and moderation hits, flag the
  rest;
- ``strict``: lower thresholds, and secrets are blocked rather than redacted.

A policy is the template for its level with overrides on top: the global ``safety`` section, then
``safety.teams[TEAM]``, then ``safety.keys[KEY_ID or KEY_NAME]``, then the key's own ``policy``
attribute (a level). Each override inherits whatever it does not set:

    >>> p = resolve_policy(SafetyConfig(level="moderate", teams={"ml": {"actions": {"pii": "flag"}}}), team="ml")
    >>> p.level, p.rule("pii").action, p.rule("secret").action
    ('moderate', 'flag', 'redact')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from ..config import SafetyConfig, SafetyRule
from .findings import CATEGORIES, Action, Category

Level = Literal["off", "low", "moderate", "strict"]
LEVELS: tuple[str, ...] = ("off", "low", "moderate", "strict")


@dataclass(frozen=True, slots=True)
class CategoryRule:
    """Findings scoring at least ``threshold`` get ``action``; those between ``flag_at`` and
    ``threshold`` are flagged; weaker ones are ignored."""

    action: Action
    threshold: float = 0.5
    flag_at: float = 0.5

    def action_for(self, score: float) -> Action | None:
        if score >= self.threshold:
            return self.action
        if score >= self.flag_at:
            return "flag"
        return None


def _rules(**kw: CategoryRule) -> dict[str, CategoryRule]:
    return kw


_TEMPLATES: dict[str, dict[str, CategoryRule]] = {
    "off": {c: CategoryRule("allow", 2.0, 2.0) for c in CATEGORIES},
    "low": {c: CategoryRule("flag", 0.5, 0.5) for c in CATEGORIES},
    "moderate": _rules(
        pii=CategoryRule("redact", 0.5, 0.5),
        secret=CategoryRule("redact", 0.5, 0.5),
        injection=CategoryRule("block", 0.8, 0.5),
        toxicity=CategoryRule("block", 0.8, 0.5),
        custom=CategoryRule("block", 0.5, 0.5),
        moderation=CategoryRule("block", 0.5, 0.5),
    ),
    "strict": _rules(
        pii=CategoryRule("redact", 0.4, 0.4),
        secret=CategoryRule("block", 0.5, 0.5),
        injection=CategoryRule("block", 0.5, 0.4),
        toxicity=CategoryRule("block", 0.7, 0.45),
        custom=CategoryRule("block", 0.5, 0.5),
        moderation=CategoryRule("block", 0.4, 0.4),
    ),
}


@dataclass(frozen=True, slots=True)
class Policy:
    level: str
    rules: Mapping[str, CategoryRule]
    custom_rules: tuple[SafetyRule, ...] = ()
    restore_redacted: bool = False
    moderation: bool = True
    # Whether the learned scorer's findings count on their own, or only strengthen a detector's
    # finding of the same category. Alone, they cost ~1% more false positives on prompt sources
    # the scorer never saw (cross-validated), so only ``strict`` takes them.
    learned_alone: bool = False
    # Where the policy came from, for the audit log ("global", "team:ml", "key:k_1").
    source: str = "global"
    # Categories checked on answers; injection is an input-side concern.
    output_categories: frozenset[str] = field(default_factory=lambda: frozenset({"pii", "secret", "toxicity", "custom", "moderation"}))

    @property
    def enabled(self) -> bool:
        return self.level != "off"

    def rule(self, category: Category | str) -> CategoryRule:
        return self.rules[category]


class PolicyOverride(BaseModel):
    """What ``safety.teams.X`` and ``safety.keys.X`` may set (validated when the config loads)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    level: Level | None = None
    actions: dict[Literal["pii", "secret", "injection", "toxicity", "custom", "moderation"], Literal["allow", "flag", "redact", "block"]] = {}
    thresholds: dict[Literal["pii", "secret", "injection", "toxicity", "custom", "moderation"], float] = {}
    restore_redacted: bool | None = None
    moderation: bool | None = None
    rules: list[SafetyRule] = []

    @field_validator("thresholds")
    @classmethod
    def _in_range(cls, v: dict[str, float]) -> dict[str, float]:
        for cat, t in v.items():
            if not 0 < t <= 1:
                raise ValueError(f"threshold for {cat} must be in (0, 1], got {t}")
        return v


def validate_overrides(cfg: SafetyConfig) -> list[str]:
    """Every problem in ``safety.teams`` / ``safety.keys``, as "safety.teams.ml.level: ..." lines."""
    problems: list[str] = []
    for section, entries in (("teams", cfg.teams), ("keys", cfg.keys)):
        for name, raw in entries.items():
            try:
                PolicyOverride.model_validate(raw)
            except ValidationError as exc:
                for err in exc.errors():
                    loc = ".".join(str(p) for p in err["loc"])
                    where = f"safety.{section}.{name}" + (f".{loc}" if loc else "")
                    problems.append(f"{where}: {str(err['msg']).removeprefix('Value error, ')}")
    return problems


def policy_for_level(level: str, *, restore_redacted: bool = False) -> Policy:
    if level not in _TEMPLATES:
        raise ValueError(f"unknown safety level {level!r}; use one of {', '.join(LEVELS)}")
    return Policy(level=level, rules=dict(_TEMPLATES[level]), restore_redacted=restore_redacted, learned_alone=level == "strict")


def _apply(p: Policy, o: PolicyOverride, source: str, global_actions: Mapping[str, str]) -> Policy:
    level = o.level or p.level
    rules = dict(_TEMPLATES[level]) if o.level and o.level != p.level else dict(p.rules)
    if o.level and o.level != p.level:
        # A level change resets the template; organisation-wide explicit actions still hold.
        for cat, act in global_actions.items():
            rules[cat] = _with(rules[cat], action=act)
    for cat, act in o.actions.items():
        rules[cat] = _with(rules[cat], action=act)
    for cat, t in o.thresholds.items():
        rules[cat] = _with(rules[cat], threshold=t, flag_at=min(t, rules[cat].flag_at))
    return Policy(
        level=level,
        rules=rules,
        custom_rules=p.custom_rules + tuple(o.rules),
        restore_redacted=p.restore_redacted if o.restore_redacted is None else o.restore_redacted,
        moderation=p.moderation if o.moderation is None else o.moderation,
        source=source,
        learned_alone=level == "strict",
    )


def _with(r: CategoryRule, **changes: Any) -> CategoryRule:
    return CategoryRule(
        action=changes.get("action", r.action),
        threshold=changes.get("threshold", r.threshold),
        flag_at=changes.get("flag_at", r.flag_at),
    )


def global_policy(cfg: SafetyConfig) -> Policy:
    p = policy_for_level(cfg.level, restore_redacted=cfg.restore_redacted)
    override = PolicyOverride(actions=dict(cfg.actions), rules=list(cfg.rules))  # type: ignore[arg-type]
    return _apply(p, override, "global", {})


def resolve_policy(
    cfg: SafetyConfig, *, team: str | None = None, key_ids: tuple[str, ...] = (), key_level: str | None = None
) -> Policy:
    """The effective policy: global, then the team's override, then the key's, then the key's level."""
    p = global_policy(cfg)
    if team and team in cfg.teams:
        p = _apply(p, PolicyOverride.model_validate(cfg.teams[team]), f"team:{team}", cfg.actions)
    for kid in key_ids:
        if kid in cfg.keys:
            p = _apply(p, PolicyOverride.model_validate(cfg.keys[kid]), f"key:{kid}", cfg.actions)
            break
    if key_level:
        p = _apply(p, PolicyOverride(level=key_level), f"{p.source}+key-level", cfg.actions)  # type: ignore[arg-type]
    return p
