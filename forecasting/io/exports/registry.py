"""The tables an export can contain: an extension point that forecasting owns.

Forecasting registers its own tables (``forecasting.io.exports.tables``); an app built on it adds
a table of its own with ``register_table`` when it starts (the market registers its price
history from ``MarketConfig.ready``), so forecasting never imports the apps that build on it.
Tables appear in exports, in their README and on the analyst page in registration order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from .schema import Table

TABLES: dict[str, Table] = {}
# The same declarations as plain (column, description) pairs.
COLUMNS: dict[str, list[tuple[str, str]]] = {}


def register_table(table: Table) -> Table:
    """Add ``table`` to every analyst export (after the tables registered before it); returns it."""
    if TABLES.get(table.name, table) is not table:
        raise ValueError(f"An export table named “{table.name}” is registered already.")
    TABLES[table.name] = table
    COLUMNS[table.name] = [(c.name, c.description) for c in table.columns]
    return table


def analyst_tables() -> tuple[str, ...]:
    """The names of the tables of an analyst export, as registered now."""
    return tuple(TABLES)


class _RegisteredTableNames(Sequence[str]):
    """The registered tables' names, read when used: apps may register tables after this module is imported."""

    def __getitem__(self, index):
        return analyst_tables()[index]

    def __len__(self) -> int:
        return len(TABLES)

    def __iter__(self) -> Iterator[str]:
        return iter(analyst_tables())

    def __contains__(self, name: object) -> bool:
        return name in TABLES

    def __repr__(self) -> str:
        return repr(analyst_tables())


ANALYST_TABLES: Sequence[str] = _RegisteredTableNames()
