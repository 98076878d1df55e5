"""QBO's aging summary reports (AgedPayables, AgedReceivables), computed from a company's books.

A report is a pure function of the books at the simulated clock, the request's parameters and the
report skews a test switched on, so the pipeline can reconcile its mirrors against "QBO's own
numbers" and see a disagreement when one is planted. Open balances are always those at the clock;
`report_date` only decides how far past due each open document is. Every cell is a string, as in
QBO's report JSON; amounts are kept in cents until they are written.
"""

from __future__ import annotations

import gc
import weakref
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any, Iterable, Mapping

from . import names as N
from .books import Side, Table
from .history import Company
from .query import QueryError
from .render import customer_display, edit_push_days, object_rng, txn_dates
from .timefmt import iso_seconds, local_date

# report name -> (ledger side, party entity, document entity)
REPORTS: dict[str, tuple[str, str, str]] = {
    "AgedPayables": ("ap", "Vendor", "Bill"),
    "AgedReceivables": ("ar", "Customer", "Invoice"),
}
MAX_AGING_PERIOD = 365
MAX_PERIODS = 12


@dataclass(frozen=True)
class ReportParams:
    """The aging parameters of one request; `explicit_date` says whether report_date was given, `parties`
    the party slots QBO's `vendor` / `customer` filter kept (None: every party)."""

    report_date: date
    aging_period: int = 30
    num_periods: int = 4
    explicit_date: bool = False
    parties: frozenset[int] | None = None


def check_report_name(name: str) -> str:
    if name not in REPORTS:
        raise QueryError(f"Report {name!r} is not supported by the sandbox; supported: {', '.join(REPORTS)}",
                         code="4000", message="Unsupported Operation")
    return name


def _bad_param(detail: str) -> QueryError:
    return QueryError(detail, code="4001", message="Invalid report parameter")


def _int_param(params: Mapping[str, str], name: str, default: int, top: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= top:
        raise _bad_param(f"{name} must be a whole number from 1 to {top}, got {raw[:20]!r}")
    return int(raw)


def _parties_param(params: Mapping[str, str], name: str) -> frozenset[int] | None:
    """QBO's party filter (`vendor` on AgedPayables, `customer` on AgedReceivables): comma-separated Ids."""
    raw = params.get(REPORTS[name][1].lower())
    if raw is None:
        return None
    ids = [part.strip() for part in raw.split(",")]
    if not all(i.isascii() and i.isdigit() and int(i) > 0 for i in ids):
        raise _bad_param(f"{REPORTS[name][1].lower()} must be comma-separated Ids, got {raw[:40]!r}")
    return frozenset(int(i) - 1 for i in ids)


def parse_params(params: Mapping[str, str], now_sec: int, offset_minutes: int, name: str) -> ReportParams:
    """report_date (default: the company's local date at the clock), aging_period, num_periods, and the
    report's party filter."""
    raw = params.get("report_date")
    if raw is None:
        day, explicit = local_date(now_sec, offset_minutes), False
    else:
        try:
            day, explicit = date.fromisoformat(raw), True
        except ValueError:
            day = None
        if day is None or len(raw) != 10:
            raise _bad_param(f"report_date must be YYYY-MM-DD, got {raw[:20]!r}")
    return ReportParams(day, _int_param(params, "aging_period", 30, MAX_AGING_PERIOD),
                        _int_param(params, "num_periods", 4, MAX_PERIODS), explicit, _parties_param(params, name))


def bucket_titles(aging_period: int, num_periods: int) -> list[str]:
    """Current, then `num_periods` aging columns, the last one open-ended (QBO's titles)."""
    titles = ["Current"]
    for k in range(num_periods - 1):
        titles.append(f"{k * aging_period + 1} - {(k + 1) * aging_period}")
    titles.append(f"{(num_periods - 1) * aging_period + 1} and over")
    return titles


def bucket_index(days_past_due: int, aging_period: int, num_periods: int) -> int:
    """0 = Current (not yet due), then 1..num_periods; the last bucket takes everything older."""
    if days_past_due <= 0:
        return 0
    return min(num_periods, (days_past_due - 1) // aging_period + 1)


def money_text(cents: int) -> str:
    """'1234.50', '-12.05': two decimals, no grouping, as QBO writes report amounts."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}.{part:02d}"


# What a report derives from an object's seed, kept per table (dropped with it when a company replays
# from scratch). Seeds and creation times never change, so a report re-seeds only the documents and
# customers it has not met before (re-seeding each was about two thirds of a report's time at 1M).
# Document table -> slot -> DueDate ordinal before any edit push (0 until first asked).
_BASE_DUE: weakref.WeakKeyDictionary[Table, array] = weakref.WeakKeyDictionary()
# Customer table -> slot -> display name.
_CUSTOMER_NAMES: weakref.WeakKeyDictionary[Table, dict[int, str]] = weakref.WeakKeyDictionary()


def _side(company: Company, name: str) -> Side:
    return company.books.ap if REPORTS[name][0] == "ap" else company.books.ar


def _party_names(company: Company, party_entity: str, slots: Iterable[int]) -> dict[int, str]:
    """Slot -> DisplayName for at least `slots` (a vendor's name needs no seed; a customer's is kept)."""
    if party_entity == "Vendor":
        return {slot: N.vendor_name(slot + 1) for slot in slots}
    known = _CUSTOMER_NAMES.get(company.books.ar.party)
    if known is None:
        known = _CUSTOMER_NAMES[company.books.ar.party] = {}
    for slot in slots:
        if slot not in known:
            known[slot] = customer_display(company, slot)
    return known


def _base_dues(company: Company, doc_entity: str, table: Table, slots: Iterable[int]) -> array:
    """The table's cache with every slot of `slots` filled in."""
    cache = _BASE_DUE.get(table)
    if cache is None:
        cache = _BASE_DUE[table] = array("l")
    if len(cache) < len(table):
        cache.extend([0] * (len(table) - len(cache)))
    for slot in slots:
        if not cache[slot]:
            due = date.fromisoformat(txn_dates(company, object_rng(company, doc_entity, slot), table, slot)[1])
            cache[slot] = due.toordinal() - edit_push_days(table, slot)
    return cache


def aging_cents(company: Company, name: str, params: ReportParams,
                skews: Mapping[str, int] | None = None) -> dict[int, list[int]]:
    """Party slot -> cents per bucket (Current first) of its open documents, plus any skew in Current."""
    side = _side(company, name)
    doc_entity = REPORTS[name][2]
    width = params.num_periods + 1
    report_day = params.report_date.toordinal()
    by_party = side.open_by_party
    if params.parties is not None:  # a filtered report costs its parties' documents, not the book's
        by_party = {p: by_party[p] for p in params.parties if p in by_party}
    base_due = _base_dues(company, doc_entity, side.doc, (s for docs in by_party.values() for s in docs))
    out: dict[int, list[int]] = {}
    for party, docs in by_party.items():
        for slot in docs:
            days_past_due = report_day - base_due[slot] - edit_push_days(side.doc, slot)
            index = bucket_index(days_past_due, params.aging_period, params.num_periods)
            out.setdefault(party, [0] * width)[index] += side.doc_balance(slot)
    for entity_id, cents in (skews or {}).items():
        slot = int(entity_id) - 1
        if params.parties is not None and slot not in params.parties:
            continue
        if 0 <= slot < len(side.party) and side.party.is_live(slot):  # the party may not exist at this instant
            out.setdefault(slot, [0] * width)[0] += cents
    return out


def _cells(amounts: list[int]) -> list[dict[str, str]]:
    """Bucket cells are "" when zero; the Total cell is always written."""
    cells = [{"value": money_text(c) if c else ""} for c in amounts]
    return cells + [{"value": money_text(sum(amounts))}]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic collector off while a report body is built, back as it was after.

    A whole-book report allocates ~500k small dicts and lists, none of them in a cycle; in a process
    holding a 1M-object company, the full collections they trigger took more than half of each
    report's time. Reference counting still frees everything as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def aged_report(company: Company, name: str, params: ReportParams, now_sec: int,
                skews: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The report body QBO sends for GET /reports/<name>: Header, Columns and Rows."""
    with collector_paused():
        return _aged_report(company, name, params, now_sec, skews)


def _aged_report(company: Company, name: str, params: ReportParams, now_sec: int,
                 skews: Mapping[str, int] | None) -> dict[str, Any]:
    party_entity = REPORTS[name][1]
    titles = bucket_titles(params.aging_period, params.num_periods)
    aging = aging_cents(company, name, params, skews)
    owing = [slot for slot, cents in aging.items() if sum(cents)]
    names = _party_names(company, party_entity, owing)
    parties = sorted(((names[slot], slot) for slot in owing), key=lambda item: (item[0].casefold(), item[0], item[1]))
    rows: list[dict[str, Any]] = []
    grand = [0] * len(titles)
    for party_name, slot in parties:
        amounts = aging[slot]
        grand = [a + b for a, b in zip(grand, amounts)]
        rows.append({"ColData": [{"value": party_name, "id": str(slot + 1)}, *_cells(amounts)], "type": "Data"})
    rows.append({"Summary": {"ColData": [{"value": "TOTAL"}, *_cells(grand)]}, "type": "Section",
                 "group": "GrandTotal"})
    day = params.report_date.isoformat()
    header: dict[str, Any] = {"Time": iso_seconds(now_sec, company.spec.offset_minutes), "ReportName": name}
    if not params.explicit_date:
        header["DateMacro"] = "today"
    header.update({"StartPeriod": day, "EndPeriod": day, "ReportBasis": "Accrual", "SummarizeColumnsBy": "Total",
                   "Currency": "USD",
                   "Option": [{"Name": "report_date", "Value": day},
                              {"Name": "aging_period", "Value": str(params.aging_period)},
                              {"Name": "num_periods", "Value": str(params.num_periods)},
                              {"Name": "NoReportData", "Value": "false" if parties else "true"}]})
    keys = ["current", *(str(k) for k in range(params.num_periods))]
    columns = [{"ColTitle": "", "ColType": party_entity}]
    columns += [{"ColTitle": title, "ColType": "Money", "MetaData": [{"Name": "ColKey", "Value": key}]}
                for title, key in zip(titles, keys)]
    columns.append({"ColTitle": "Total", "ColType": "Money", "MetaData": [{"Name": "ColKey", "Value": "total"}]})
    return {"Header": header, "Columns": {"Column": columns}, "Rows": {"Row": rows}}
