"""Exports of the usage ledger and reports: CSV and JSON rows, and a PDF report with charts
(the ``pdf`` extra: fpdf2, imported only for PDF).

    await export_usage(store, report, "csv", Path("usage.csv"), since_ts)
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from .analytics import Report
from .ledger import LedgerStore
from .ledger_sql import ROW_COLUMNS


async def export_usage(store: LedgerStore, report: Report, fmt: str, out: Path, start: float,
                       limit: int = 1_000_000) -> int:
    """Write the ledger rows since ``start`` (csv, json) or the report (pdf); returns rows written."""
    if fmt == "pdf":
        write_pdf(report, out)
        return len(report.rows)
    rows = await store.rows(start, None, limit)
    write_rows(rows, report, fmt, out)
    return len(rows)


def write_rows(rows: list[dict[str, Any]], report: Report, fmt: str, out: Path) -> None:
    if fmt == "csv":
        with out.open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(ROW_COLUMNS))
            w.writeheader()
            w.writerows(rows)
    elif fmt == "json":
        import orjson

        out.write_bytes(orjson.dumps({"report": report.to_dict(), "rows": rows}, option=orjson.OPT_INDENT_2))
    else:
        raise ValueError(f"unknown export format {fmt!r}; use csv, json or pdf")


def write_pdf(report: Report, out: Path) -> None:
    try:
        from fpdf import FPDF
    except ImportError:
        raise RuntimeError("PDF export needs fpdf2: pip install 'llmrelay[pdf]'") from None
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, f"llmrelay usage report (last {report.since})", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    t = report.total
    pdf.cell(0, 6, f"Requests: {t.get('requests', 0)}   Spend: ${t.get('cost_usd', 0):.4f}   "
             f"Month to date: ${report.month_to_date_usd:.2f}   Forecast: ${report.forecast_month_usd:.2f}",
             new_x="LMARGIN", new_y="NEXT")
    _bar_chart(pdf, "Spend per day (USD)", [(r["day"], float(r["cost_usd"])) for r in report.trend])
    label = lambda r: " / ".join(str(r.get(c, "")) for c in r if c not in _MEASURES)  # noqa: E731
    _bar_chart(pdf, f"Spend by {', '.join(report.by)}", [(label(r), float(r["cost_usd"])) for r in report.rows[:15]])
    if report.recommendations:
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 8, "Recommendations", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=9)
        for rec in report.recommendations[:10]:
            pdf.multi_cell(0, 5, f"- save ${rec.saving_usd:.4f}: {rec.message}".encode("latin-1", "replace").decode("latin-1"),
                           new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(out))


_MEASURES = {"requests", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
             "reasoning_tokens", "cost_usd", "cost_saved_usd", "unpriced", "errors", "cache_hits", "avg_latency_ms"}


def _bar_chart(pdf: Any, title: str, data: list[tuple[str, float]]) -> None:
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=8)
    top = max((v for _, v in data), default=0.0) or 1.0
    for name, value in data:
        y = pdf.get_y()
        pdf.cell(50, 5, str(name)[:30].encode("latin-1", "replace").decode("latin-1"))
        pdf.set_fill_color(70, 110, 200)
        pdf.rect(62, y + 1, max(0.5, 110 * value / top), 3.5, style="F")
        pdf.set_xy(175, y)
        pdf.cell(25, 5, f"${value:.4f}", new_x="LMARGIN", new_y="NEXT")
