"""Example arguments generated from a JSON schema, so simulated tool calls validate.

    >>> example_for({"type": "object", "properties": {"city": {"type": "string"}, "n": {"type": "integer", "minimum": 2}}})
    {'city': 'example city', 'n': 2}
"""

from __future__ import annotations

from typing import Any

_MAX_DEPTH = 8


def example_for(schema: Any, hint: str = "value", defs: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """A value that satisfies ``schema`` (the common subset: types, enum, const, refs, anyOf, bounds)."""
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return None if depth > _MAX_DEPTH else {}
    defs = {**(defs or {}), **schema.get("$defs", {}), **schema.get("definitions", {})}
    if "$ref" in schema:
        target = defs.get(str(schema["$ref"]).rsplit("/", 1)[-1], {})
        return example_for(target, hint, defs, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            options = [s for s in schema[key] if not (isinstance(s, dict) and s.get("type") == "null")]
            return example_for((options or schema[key])[0], hint, defs, depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    return _by_type(str(kind).lower(), schema, hint, defs, depth)


def _by_type(kind: str, schema: dict[str, Any], hint: str, defs: dict[str, Any], depth: int) -> Any:
    if kind == "object":
        props = schema.get("properties") or {}
        return {name: example_for(sub, name, defs, depth + 1) for name, sub in props.items()}
    if kind == "array":
        n = max(int(schema.get("minItems", 1)), 1)
        return [example_for(schema.get("items", {}), hint, defs, depth + 1) for _ in range(n)]
    if kind == "integer":
        return int(schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1 if "exclusiveMinimum" in schema else 1))
    if kind == "number":
        return float(schema.get("minimum", 1.5))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string(schema, hint)


def _string(schema: dict[str, Any], hint: str) -> str:
    fmt = schema.get("format")
    if fmt == "date":
        return "2024-01-01"
    if fmt == "date-time":
        return "2024-01-01T00:00:00Z"
    if fmt == "email":
        return "user@example.com"
    if fmt in ("uri", "url"):
        return "https://example.com"
    text = f"example {hint}"
    lo, hi = int(schema.get("minLength", 0)), schema.get("maxLength")
    text = text.ljust(lo, "x")
    return text[: int(hi)] if hi is not None else text
