"""Parser for the subset of the QBO query language the sandbox answers.

    SELECT * | COUNT(*) | Field[, Field] FROM Entity
      [WHERE cond [AND cond]...] [ORDERBY field [ASC|DESC][, Id]] [STARTPOSITION n] [MAXRESULTS n]

cond: `MetaData.LastUpdatedTime <op> '<ISO-8601>'` (op one of > >= < <= =), `Id IN ('1', ...)`,
`Id = '1'`, `Active IN (true, false)`, `Active = true|false`. Keywords, entity and field names are
case-insensitive. Anything else is a QBO "Error parsing query" (400, code 4000).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..entities import BY_NAME
from .timefmt import parse_instant

MAX_RESULTS = 1000
DEFAULT_MAX_RESULTS = 100
_ENTITIES = {name.lower(): name for name in BY_NAME}
_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<num>\d+)|(?P<op>>=|<=|!=|[=<>(),*])"
                    r"|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))")
LAST_UPDATED, ID = "MetaData.LastUpdatedTime", "Id"


class QueryError(Exception):
    """A query QBO would refuse: carries QBO's error code, message and detail."""

    def __init__(self, detail: str, *, code: str = "4000", message: str = "Error parsing query") -> None:
        super().__init__(detail)
        self.code, self.message, self.detail = code, message, detail


@dataclass
class Query:
    """A parsed query; time bounds are inclusive epoch seconds (None = open)."""

    entity: str
    count: bool = False
    fields: tuple[str, ...] | None = None  # None = SELECT *
    lo: int | None = None
    hi: int | None = None
    ids: set[int] | None = None
    active: set[bool] | None = None
    order: str | None = None
    desc: bool = False
    start: int = 1
    max_results: int = DEFAULT_MAX_RESULTS


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos, text = [], 0, text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise QueryError(f"QueryParserError: Encountered an unexpected character at column {pos + 1}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, text: str, offset_minutes: int) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.offset = offset_minutes

    def peek(self) -> str:
        return self.toks[self.i][1] if self.i < len(self.toks) else ""

    def take(self) -> tuple[str, str]:
        if self.i >= len(self.toks):
            raise QueryError("QueryParserError: Encountered end of query unexpectedly")
        self.i += 1
        return self.toks[self.i - 1]

    def keyword(self, *words: str) -> str | None:
        if self.peek().upper() in words:
            return self.take()[1].upper()
        return None

    def expect(self, word: str) -> None:
        value = self.take()[1]
        if value.upper() != word:
            raise QueryError(f'QueryParserError: Encountered "{value}". Was expecting "{word}"')

    def number(self) -> int:
        kind, value = self.take()
        if kind != "num":
            raise QueryError(f'QueryParserError: Encountered "{value}". Was expecting a number')
        return int(value)

    def parse(self) -> Query:
        self.expect("SELECT")
        count, fields = False, None
        if self.peek() == "*":
            self.take()
        elif self.peek().upper() == "COUNT":
            self.take()
            for symbol in "(*)":
                self.expect(symbol)
            count = True
        else:
            names = [self.take()[1]]
            while self.peek() == ",":
                self.take()
                names.append(self.take()[1])
            fields = tuple(names)
        self.expect("FROM")
        name = self.take()[1]
        if name.lower() not in _ENTITIES:
            raise QueryError(f"QueryParserError: Invalid entity name: {name}")
        q = Query(_ENTITIES[name.lower()], count=count, fields=fields)
        if self.keyword("WHERE"):
            self.condition(q)
            while self.keyword("AND"):
                self.condition(q)
        if self.keyword("ORDERBY"):
            field = self.take()[1]
            if field.lower() not in (LAST_UPDATED.lower(), ID.lower()):
                raise QueryError(f"QueryParserError: ORDERBY {field} is not supported by the sandbox")
            q.order = LAST_UPDATED if field.lower() == LAST_UPDATED.lower() else ID
            q.desc = self.keyword("ASC", "DESC") == "DESC"
            if self.peek() == "," and q.order == LAST_UPDATED:  # ", Id [ASC]": ties are by Id anyway
                self.take()
                if self.take()[1].lower() != "id" or self.keyword("ASC", "DESC") == "DESC":
                    raise QueryError("QueryParserError: the sandbox only breaks ties by ascending Id")
        seen: set[str] = set()
        while (word := self.keyword("STARTPOSITION", "MAXRESULTS")) and word not in seen:
            seen.add(word)
            if word == "STARTPOSITION":
                q.start = self.number()
            else:
                q.max_results = self.number()
        if self.i < len(self.toks):
            raise QueryError(f'QueryParserError: Encountered "{self.toks[self.i][1]}" after the end of the query')
        if q.start < 1:
            raise QueryError("QueryValidationError: STARTPOSITION must be 1 or more", code="4001",
                             message="Invalid query")
        if not 1 <= q.max_results <= MAX_RESULTS:
            raise QueryError(f"QueryValidationError: value {q.max_results} is out of range for MAXRESULTS. "
                             f"Max allowed value is {MAX_RESULTS}", code="4001", message="Invalid query")
        return q

    def literals(self) -> list[tuple[str, str]]:
        self.expect("(")
        values = [self.take()]
        while self.peek() == ",":
            self.take()
            values.append(self.take())
        self.expect(")")
        return values

    def condition(self, q: Query) -> None:
        field = self.take()[1]
        op = self.take()[1].upper()
        lower = field.lower()
        if lower == LAST_UPDATED.lower() and op in (">", ">=", "<", "<=", "="):
            self.time_bound(q, op)
        elif lower == "id" and op in ("IN", "="):
            values = self.literals() if op == "IN" else [self.take()]
            ids = {self.id_value(kind, value) for kind, value in values}
            q.ids = ids if q.ids is None else q.ids & ids
        elif lower == "active" and op in ("IN", "="):
            if BY_NAME[q.entity].is_name_list is False:
                raise QueryError(f"QueryValidationError: property 'Active' is not queryable for {q.entity}",
                                 code="4001", message="Invalid query")
            values = self.literals() if op == "IN" else [self.take()]
            flags = {self.bool_value(value) for _, value in values}
            q.active = flags if q.active is None else q.active & flags
        else:
            raise QueryError(f"QueryParserError: condition on {field} {op} is not supported by the sandbox")

    def time_bound(self, q: Query, op: str) -> None:
        kind, value = self.take()
        if kind != "str":
            raise QueryError(f"QueryParserError: {LAST_UPDATED} must be compared with a quoted timestamp")
        try:
            us = parse_instant(value[1:-1], self.offset)
        except ValueError:
            raise QueryError(f"QueryParserError: invalid timestamp {value}") from None
        floor, ceil = us // 1_000_000, -(-us // 1_000_000)
        lo = {">": floor + 1, ">=": ceil, "=": ceil}.get(op)
        hi = {"<": ceil - 1, "<=": floor, "=": floor}.get(op)
        if lo is not None:
            q.lo = lo if q.lo is None else max(q.lo, lo)
        if hi is not None:
            q.hi = hi if q.hi is None else min(q.hi, hi)

    @staticmethod
    def id_value(kind: str, value: str) -> int:
        raw = value[1:-1] if kind == "str" else value
        if not raw.isdigit():
            return -1  # matches nothing, like an Id that does not exist
        return int(raw)

    @staticmethod
    def bool_value(value: str) -> bool:
        raw = value.strip("'").lower()
        if raw not in ("true", "false"):
            raise QueryError(f"QueryParserError: Active must be true or false, got {value}")
        return raw == "true"


def parse_query(text: str, offset_minutes: int) -> Query:
    if len(text) > 8000:
        raise QueryError("QueryParserError: query is too long")
    return _Parser(text, offset_minutes).parse()
