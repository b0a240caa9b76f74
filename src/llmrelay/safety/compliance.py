"""The compliance report for a period: safety events by category and action, audit chain status,
retention applied, and access and erasure requests served. JSON always; PDF with the ``pdf`` extra.

    data = await compliance_report(log, since, until, retention_days=30)
    render_pdf(data, Path("report.pdf"))
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from .audit import AuditLog


async def compliance_report(log: AuditLog, since: float, until: float, retention_days: int | None) -> dict[str, Any]:
    by_cat: Counter[str] = Counter()
    by_action: Counter[str] = Counter()
    by_direction: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    retention_runs = 0
    retention_deleted = 0
    for e in await log.entries(since, until):
        kinds[e.kind] += 1
        data = orjson.loads(e.data)
        if e.kind == "safety":
            by_action[data.get("action", "?")] += 1
            by_direction[data.get("direction", "?")] += 1
            for f in data.get("findings", []):
                by_cat[f"{f.get('category')}/{f.get('action')}"] += 1
        elif e.kind == "privacy.retention":
            retention_runs += 1
            retention_deleted += int(data.get("deleted", 0))
    chain = await log.verify()
    return {
        "period": {"since": since, "until": until},
        "safety": {"decisions_by_action": dict(by_action), "decisions_by_direction": dict(by_direction),
                   "findings_by_category_action": dict(sorted(by_cat.items()))},
        "audit_chain": chain.to_dict(),
        "retention": {"configured_days": retention_days, "runs": retention_runs, "content_rows_deleted": retention_deleted},
        "privacy_requests": {"access": kinds["privacy.export"], "erasure": kinds["privacy.erase"]},
        "entries_by_kind": dict(kinds),
    }


def render_pdf(data: dict[str, Any], path: Path) -> None:
    try:
        from fpdf import FPDF
    except ImportError:
        from ..errors import ConfigError

        raise ConfigError("PDF reports need the 'pdf' extra: pip install llmrelay[pdf]") from None
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, "llmrelay compliance report", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    for section, body in data.items():
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 8, section.replace("_", " "), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=9)
        pdf.multi_cell(0, 5, orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
    pdf.output(str(path))
