"""QBO report bodies as typed values, so reconciliation compares Decimals, not strings.

QBO writes every report cell as a string ("1234.50", or "" for nothing) and may nest rows inside
Sections (Header / Rows / Summary), for example sub-customers under their parent. The parser keeps
every Data row wherever it sits, ignores section subtotals (they would count rows twice) and takes
the totals from the GrandTotal section. A body of the wrong shape raises `PageShapeError`, which
the client retries and finally reports as QboMalformedResponse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ledger_pipeline.rails.qbo.wire import PageShapeError

# Reports the client knows how to read, with the ColType of their first (party) column.
SUPPORTED_REPORTS: dict[str, str] = {"AgedPayables": "Vendor", "AgedReceivables": "Customer"}
_MAX_DEPTH = 16
_AMOUNT = re.compile(r"-?[0-9]+(?:\.[0-9]*)?")  # '1234.50', '-12.05', '7', '7.': ASCII digits, no grouping
_ZERO = Decimal(0)


@dataclass(frozen=True)
class QboReportRow:
    """One party's line: its QBO Id (None if the report gave none), name and amount per column title."""

    entity_id: str | None
    name: str
    amounts: dict[str, Decimal]


@dataclass(frozen=True)
class QboReport:
    """A parsed report; `columns` are the amount column titles in order (the party column left out)."""

    name: str
    report_date: date | None
    currency: str | None
    columns: list[str]
    rows: list[QboReportRow]
    total: dict[str, Decimal]


def check_report_name(name: str) -> str:
    """The name if the client supports that report, else ValueError naming the ones it does."""
    if not isinstance(name, str) or name not in SUPPORTED_REPORTS:
        raise ValueError(f"unsupported QBO report {name!r}; supported reports: {', '.join(SUPPORTED_REPORTS)}")
    return name


def check_parties(name: str, parties: list[str]) -> list[str]:
    """Party Ids for the report's filter (`vendor` / `customer`): QBO Ids, which are digits, listed once each."""
    bad = [p for p in parties if not (isinstance(p, str) and p.isascii() and p.isdigit())]
    if bad:
        raise ValueError(f"{name} filter takes QBO {SUPPORTED_REPORTS[name]} Ids (digits), got {bad[0]!r}")
    return sorted(set(parties), key=lambda p: (len(p), p))


def party_param(name: str) -> str:
    """The query parameter that filters the report by party: `vendor` or `customer`."""
    return SUPPORTED_REPORTS[name].lower()


def merged(parts: list[QboReport]) -> QboReport:
    """One report from the answers to the same report filtered to disjoint sets of parties."""
    first = parts[0]
    if any(p.columns != first.columns or p.report_date != first.report_date for p in parts):
        raise PageShapeError("the parts of a filtered report differ in columns or report date")
    total = {title: sum((p.total.get(title, _ZERO) for p in parts), _ZERO) for title in first.columns}
    rows = [row for p in parts for row in p.rows]
    return QboReport(first.name, first.report_date, first.currency, first.columns, rows, total)


def check_report_date(value: date | None) -> date | None:
    if value is not None and (not isinstance(value, date) or isinstance(value, datetime)):
        raise ValueError(f"report_date must be a datetime.date, got {value!r}")
    return value


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PageShapeError(f"{what} is not a JSON object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise PageShapeError(f"{what} is not a list")
    return value


def _text(cell: Any, what: str) -> str:
    value = _obj(cell, what).get("value")
    if not isinstance(value, str):
        raise PageShapeError(f"{what} has no string value")
    return value


def money(text: str, what: str) -> Decimal:
    """'' -> 0; '1234.50' / '-12.05' -> Decimal; anything else (NaN, '1,234.50', '12e3') is malformed."""
    if text == "":
        return _ZERO
    if not _AMOUNT.fullmatch(text):
        raise PageShapeError(f"{what} is not an amount: {text[:30]!r}")
    return Decimal(text)


def _amounts(cells: list[Any], columns: list[str], what: str) -> dict[str, Decimal]:
    if len(cells) != len(columns) + 1:
        raise PageShapeError(f"{what} has {len(cells)} cells for {len(columns) + 1} columns")
    texts = [cell.get("value") if type(cell) is dict else None for cell in cells[1:]]
    # Fast path (a whole-book report has ~100k rows): every cell a string `money` accepts; any other row
    # goes through `_text` and `money`, which name what is wrong with it.
    if all(type(text) is str and (not text or _AMOUNT.fullmatch(text)) for text in texts):
        return {title: Decimal(text) if text else _ZERO for title, text in zip(columns, texts)}
    return {title: money(_text(cell, what), f"{what} {title!r}") for title, cell in zip(columns, cells[1:])}


def _walk(rows: Any, columns: list[str], found: list[QboReportRow], totals: list[dict[str, Decimal]],
          depth: int = 0) -> None:
    """Collect Data rows at any depth and the GrandTotal summary; other subtotals are skipped."""
    if depth > _MAX_DEPTH:
        raise PageShapeError("report sections are nested too deep")
    for index, raw in enumerate(_list(_obj(rows, "Rows").get("Row", []), "Rows.Row")):
        row = _obj(raw, f"row {index}")
        if "ColData" in row:
            cells = _list(row["ColData"], f"row {index} ColData")
            if not cells:
                raise PageShapeError(f"row {index} has no cells")
            first = _obj(cells[0], f"row {index} name cell")
            entity_id = first.get("id")
            if entity_id is not None and not isinstance(entity_id, str):
                raise PageShapeError(f"row {index} id is not a string")
            name = _text(first, f"row {index} name cell")
            found.append(QboReportRow(entity_id or None, name, _amounts(cells, columns, f"row {name[:40]!r}")))
            continue
        if "Rows" in row:
            _walk(row["Rows"], columns, found, totals, depth + 1)
        if row.get("group") == "GrandTotal":
            summary = _list(_obj(row.get("Summary"), "GrandTotal Summary").get("ColData"), "GrandTotal ColData")
            totals.append(_amounts(summary, columns, "GrandTotal"))


def _report_date(header: dict[str, Any]) -> date | None:
    for option in _list(header.get("Option", []), "Header.Option"):
        if isinstance(option, dict) and option.get("Name") == "report_date":
            value = option.get("Value")
            if isinstance(value, str) and len(value) == 10:
                try:
                    return date.fromisoformat(value)
                except ValueError:
                    pass
            raise PageShapeError(f"report_date option is not a date: {str(value)[:30]!r}")
    return None


def parse_report(body: dict[str, Any], name: str) -> QboReport:
    """A QboReport from QBO's report JSON; PageShapeError if it is not the report asked for."""
    header = _obj(body.get("Header"), "Header")
    if header.get("ReportName") != name:
        raise PageShapeError(f"Header.ReportName is {str(header.get('ReportName'))[:40]!r}, expected {name!r}")
    column_list = _list(_obj(body.get("Columns"), "Columns").get("Column"), "Columns.Column")
    titles = [_obj(c, "column").get("ColTitle") for c in column_list]
    if len(titles) < 2 or not all(isinstance(t, str) for t in titles):
        raise PageShapeError("report needs a party column and amount columns, each with a string ColTitle")
    columns = [str(t) for t in titles[1:]]
    if len(set(columns)) != len(columns):
        raise PageShapeError(f"duplicate column titles: {columns}")
    currency = header.get("Currency")
    rows: list[QboReportRow] = []
    totals: list[dict[str, Decimal]] = []
    _walk(body.get("Rows") or {}, columns, rows, totals)
    if len(totals) > 1 or (rows and not totals):
        raise PageShapeError(f"expected one GrandTotal row, found {len(totals)}")
    total = totals[0] if totals else {title: Decimal(0) for title in columns}
    return QboReport(name, _report_date(header), currency if isinstance(currency, str) else None, columns, rows,
                     total)
