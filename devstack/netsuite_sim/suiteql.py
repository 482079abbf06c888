"""A deliberately small SuiteQL subset over the sim's tables.

Grammar: ``SELECT cols|*|COUNT(*) [AS a] FROM table [WHERE col = v [AND col = v ...]]
[ORDER BY col [ASC|DESC], ...]`` with ``v`` a quoted string, a number or ``?`` (from
``params``); a condition may also be ``col IN (v, v, ...)`` or ``col BETWEEN v AND v``.
Anything else is rejected rather than half-supported, so a query that works here has a
fair chance of working on a real account.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from tillbridge.devstack.netsuite_sim import availability, custom, giftcerts
from tillbridge.devstack.netsuite_sim.errors import SimError
from tillbridge.devstack.netsuite_sim.records import ref_id
from tillbridge.devstack.netsuite_sim.store import Store
from tillbridge.devstack.netsuite_sim.tables import (
    LINE_TABLE,
    TRANSACTION_TABLE,
    Row,
    Table,
    stamp,
)

_QUERY = re.compile(
    r"^\s*SELECT\s+(?P<cols>.+?)\s+FROM\s+(?P<table>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>.+?))?\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_COND = re.compile(
    r"^\s*(\w+)\s*(=|<>|!=|>=|<=|>|<)\s*"
    r"(TO_DATE\s*\(\s*'[^']*'\s*,\s*'[^']*'\s*\)|'(?:[^']|'')*'|-?\d+(?:\.\d+)?|\?)\s*$",
    re.IGNORECASE)
_IN = re.compile(r"^\s*(\w+)\s+IN\s*\((.+)\)\s*$", re.IGNORECASE | re.DOTALL)
_IN_VALUE = re.compile(r"\s*('(?:[^']|'')*'|-?\d+(?:\.\d+)?|\?)\s*(?:,|$)")
_TO_DATE = re.compile(r"^TO_DATE\s*\(\s*'([^']*)'", re.IGNORECASE)
_COL = re.compile(r"^\s*(COUNT\s*\(\s*\*\s*\)|SUM\s*\(\s*\w+\s*\)|\w+)"
                  r"(?:\s+(?:AS\s+)?(\w+))?\s*$", re.IGNORECASE)
_SUM = re.compile(r"^SUM\s*\(\s*(\w+)\s*\)$", re.IGNORECASE)
_AND = re.compile(r"\s+AND\s+", re.IGNORECASE)
# ``col BETWEEN a AND b`` (Oracle's bound-parameter sample, reference §1.6) is read as
# ``col >= a AND col <= b`` before the conditions are split on AND.
_BETWEEN = re.compile(r"(\w+)\s+BETWEEN\s+(TO_DATE\s*\([^)]*\)|'(?:[^']|'')*'|-?\d+(?:\.\d+)?|\?)"
                      r"\s+AND\s+(TO_DATE\s*\([^)]*\)|'(?:[^']|'')*'|-?\d+(?:\.\d+)?|\?)",
                      re.IGNORECASE)


def _invalid(query: str) -> SimError:
    return SimError(400, "INVALID_PARAMETER",
                    f"Invalid search query. Detailed unprocessed description follows. "
                    f"Search error occurred: Invalid or unsupported search: {query}")


def _unknown(identifier: str, table: str) -> SimError:
    return SimError(400, "INVALID_PARAMETER", f"Unknown identifier '{identifier}'. Available "
                    f"identifiers are: {{{table}={table}}}.")


def sql_value(value: Any) -> str | None:
    """SuiteQL renders every value as a string; booleans are 'T'/'F'."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, dict):
        return ref_id(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _ref_rows(attr: str, columns: tuple[str, ...]) -> Table:
    def rows(store: Store) -> list[Row]:
        return [{c: r.get(c) for c in columns} for r in getattr(store, attr).values()]
    return Table(columns, rows)


def _item_rows(store: Store) -> list[Row]:
    return [{"id": i["id"], "itemid": i["itemid"], "displayname": i.get("displayname"),
             "itemtype": i.get("itemtype"), "isinactive": i.get("isinactive", False),
             "baseprice": i.get("basePrice"), "taxschedule": i.get("taxschedule"),
             "parent": i.get("parent"), "matrixtype": i.get("matrixtype"),
             "externalid": i.get("externalid"),
             "lastmodifieddate": i.get("lastmodifieddate", store.seeded_at)}
            for i in store.items.values()]


#: Member is 10% and clearance 30% off base, rounded half-up to the cent as the POS does.
_LEVEL_FACTOR = {"Base Price": Decimal(1), "Member": Decimal("0.90"),
                 "Clearance": Decimal("0.70")}


def _pricing_rows(store: Store) -> list[Row]:
    """Per-level unit prices of priced items (discount items and matrix parents carry none)."""
    out = []
    for i in store.items.values():
        if i.get("itemtype") == "Discount" or i.get("matrixtype") == "PARENT":
            continue
        base = Decimal(str(i.get("basePrice") or 0))
        for level in store.price_levels.values():
            factor = _LEVEL_FACTOR.get(level["name"])
            if factor is not None:
                price = (base * factor).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
                out.append({"item": i["id"], "pricelevel": level["id"], "unitprice": str(price)})
    return out


def _employee_rows(store: Store) -> list[Row]:
    return [{"id": e["id"], "entityid": e.get("entityid"), "issalesrep": e.get("issalesrep"),
             "custentity_pos_employee_id": e.get("pos_employee_id"),
             "isinactive": e.get("isinactive", False)} for e in store.employees.values()]


_CUSTOMER_COLS = ("id", "entityid", "companyname", "firstname", "lastname", "email", "phone",
                  "isperson", "isinactive", "externalid", "subsidiary", "custentity_loyalty_id",
                  "datecreated", "lastmodifieddate")


def _customer_rows(store: Store) -> list[Row]:
    out = []
    for rec in store.records("entity", "customer"):
        lower = {k.lower(): v for k, v in rec.fields.items()}
        row = {c: lower.get(c) for c in _CUSTOMER_COLS}
        row.update(id=rec.id, datecreated=stamp(rec, "created"),
                   lastmodifieddate=stamp(rec, "modified"))
        out.append(row)
    return out


TABLES: dict[str, Table] = {
    "item": Table(("id", "itemid", "displayname", "itemtype", "isinactive", "baseprice",
                   "taxschedule", "parent", "matrixtype", "externalid", "lastmodifieddate"),
                  _item_rows),
    "aggregateitemlocation": Table(availability.COLUMNS, availability.item_location_rows),
    "pricelevel": _ref_rows("price_levels", ("id", "name", "isinactive")),
    "pricing": Table(("item", "pricelevel", "unitprice"), _pricing_rows),
    "promotioncode": _ref_rows("promotions", ("id", "code", "name", "discount", "isinactive")),
    "location": _ref_rows("locations", ("id", "name", "isinactive", "subsidiary")),
    "paymentmethod": _ref_rows("payment_methods", ("id", "name", "isinactive")),
    "salestaxitem": _ref_rows("tax_codes", ("id", "itemid", "rate", "isinactive")),
    "subsidiary": _ref_rows("subsidiaries", ("id", "name", "currency", "isinactive")),
    "employee": Table(("id", "entityid", "issalesrep", "custentity_pos_employee_id",
                       "isinactive"), _employee_rows),
    "customer": Table(_CUSTOMER_COLS, _customer_rows),
    "transaction": TRANSACTION_TABLE,
    "transactionline": LINE_TABLE,
    "account": _ref_rows("accounts", ("id", "acctnumber", "name", "accttype", "isinactive",
                                      "subsidiary")),
    custom.LOYALTY: Table(custom.COLUMNS, custom.loyalty_rows),
    "giftcertificate": Table(giftcerts.COLUMNS, giftcerts.rows),
}


def _literal(token: str, params: list[Any]) -> str:
    if token == "?":  # noqa: S105 - a bind marker, not a password
        if not params:
            raise SimError(400, "INVALID_PARAMETER", "Not enough parameters for the query.")
        return str(sql_value(params.pop(0)))
    if token.startswith("'"):
        return token[1:-1].replace("''", "'")
    to_date = _TO_DATE.match(token)
    if to_date:
        # Only the 'YYYY-MM-DD HH24:MI:SS' format is supported: the sim's date columns
        # use it, so the dates compare as text in the same order as in time.
        return to_date[1]
    return token


def _compare(left: str | None, op: str, right: str) -> bool:
    """Ordering comparison as SuiteQL would: numerically for numbers, else as text."""
    if left is None:
        return False
    try:
        a: Any = Decimal(left)
        b: Any = Decimal(right)
    except InvalidOperation:
        a, b = left, right
    return {">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b}[op]


def run(query: str, params: list[Any] | None = None) -> Callable[[Store], list[Row]]:
    """Parse ``query`` now (errors surface immediately) and return a function producing rows."""
    match = _QUERY.match(query)
    if not match:
        raise _invalid(query)
    table_name = match["table"].lower()
    table = TABLES.get(table_name)
    if table is None:
        raise _unknown(match["table"], match["table"])
    pending = list(params or [])

    def column(name: str) -> str:
        col = name.lower()
        if col not in table.columns:
            raise _unknown(name, table_name)
        return col

    select: list[tuple[str, str]] = []  # (source column | "*count", output key)
    if match["cols"].strip() == "*":
        select = [(c, c) for c in table.columns]
    else:
        for n, part in enumerate(match["cols"].split(","), start=1):
            m = _COL.match(part)
            if not m:
                raise _invalid(query)
            alias = m[2].lower() if m[2] else None
            summed = _SUM.match(m[1])
            if m[1].upper().startswith("COUNT"):
                select.append(("*count", alias or f"expr{n}"))
            elif summed:
                select.append(("*sum:" + column(summed[1]), alias or f"expr{n}"))
            else:
                select.append((column(m[1]), alias or m[1].lower()))
    counting = any(src.startswith("*") for src, _ in select)
    if counting and not all(src.startswith("*") for src, _ in select):
        raise _invalid(query)  # no GROUP BY in this subset: aggregates only

    conds: list[tuple[str, str, Any]] = []
    if match["where"]:
        for part in _AND.split(_BETWEEN.sub(r"\1 >= \2 AND \1 <= \3", match["where"])):
            listed = _IN.match(part)
            if listed:
                values = _IN_VALUE.findall(listed[2])
                if "".join(_IN_VALUE.sub("", listed[2]).split()):
                    raise _invalid(query)
                conds.append((column(listed[1]), "in",
                              frozenset(_literal(v, pending) for v in values)))
                continue
            m = _COND.match(part)
            if not m:
                raise _invalid(query)
            conds.append((column(m[1]), m[2], _literal(m[3], pending)))

    order: list[tuple[str, bool]] = []
    if match["order"]:
        for part in match["order"].split(","):
            bits = part.split()
            if not bits or len(bits) > 2 or (len(bits) == 2 and bits[1].upper() not in
                                              ("ASC", "DESC")):
                raise _invalid(query)
            order.append((column(bits[0]), len(bits) == 2 and bits[1].upper() == "DESC"))

    # Only the columns the query names are rendered; a row may lack a column (mainline
    # transactionline rows have no item): it reads as null.
    used = {src.removeprefix("*sum:") for src, _ in select if src != "*count"} | \
        {c for c, _, _ in conds} | {c for c, _ in order}

    # A key column compared by = or IN reads only the matching records (as NetSuite's own
    # indexes do); any other condition scans the table.
    keyed = next(((c, value if op == "in" else frozenset((value,))) for c, op, value in conds
                  if op in ("=", "in") and c in table.keys), None)

    def execute(store: Store) -> list[Row]:
        found = table.rows(store) if keyed is None else table.keys[keyed[0]](store, keyed[1])
        rows = [{c: sql_value(_resolve(r.get(c))) for c in used} for r in found]
        for col, op, value in conds:
            if op == "=":
                rows = [r for r in rows if r[col] == value]
            elif op == "in":
                rows = [r for r in rows if r[col] in value]
            elif op in ("<>", "!="):
                rows = [r for r in rows if r[col] is not None and r[col] != value]
            else:
                rows = [r for r in rows if _compare(r[col], op, value)]
        for col, desc in reversed(order):
            rows.sort(key=_column_key(col), reverse=desc)
        if counting:
            return [_aggregate(select, rows)]
        # Null values are left out of a row, as NetSuite's REST SuiteQL does.
        return [{out: r[src] for src, out in select if r[src] is not None} for r in rows]

    return execute


def _aggregate(select: list[tuple[str, str]], rows: list[dict[str, Any]]) -> Row:
    """COUNT(*) and SUM(col) over the filtered rows, as strings; SUM of no values is null
    (left out of the row, as any null)."""
    out: Row = {}
    for src, alias in select:
        if src == "*count":
            out[alias] = str(len(rows))
            continue
        values = [Decimal(r[src[5:]]) for r in rows if r[src[5:]] is not None]
        if values:
            out[alias] = str(sum(values, Decimal(0)))
    return out


def _resolve(value: Any) -> Any:
    """A row value, or a zero-argument callable for a column that is costly to compute."""
    return value() if callable(value) else value


def _column_key(col: str) -> Callable[[dict[str, Any]], Any]:
    """Sort key of one ORDER BY column (see ``_sort_key``: numbers, then text, then NULLs)."""
    return lambda row: _sort_key(row[col])


def _sort_key(value: str | None) -> tuple[int, float, str]:
    if value is None:
        return (2, 0.0, "")
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)
