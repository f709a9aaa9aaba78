"""Inserting many rows of one model in one cheap statement, for the hot write paths.

Why not ``bulk_create``. A batch of citizen reports writes reports, clocks and key rows
by the dozen, hundreds of times a second. ``bulk_create`` compiles a ``VALUES`` list of
one placeholder per cell, and Django's psycopg cursor binds every parameter on the client:
for a batch of 64 reports that is thousands of per-cell conversions in Python and a new,
uncacheable statement text each time (measured: most of the write path's CPU).

What this does instead, on PostgreSQL: the rows travel as ONE JSON document, serialised
in C by ``json.dumps``, quoted by libpq, and unpacked by PostgreSQL itself::

    INSERT INTO t (a, b, ...) SELECT a, b, ... FROM jsonb_populate_recordset(NULL::t, %s)
    [ON CONFLICT DO NOTHING] RETURNING ...

The statement text depends only on the model, so psycopg's parse cache keeps it. Values
come from the model instances the caller built (so model defaults and ``auto_now`` apply
as with ``bulk_create``); each column gets its JSON form (:func:`_json_value`), and
PostgreSQL's own input functions turn it into the column's type. Other databases (the
embedded SQLite default) get a plain ``INSERT ... VALUES ... RETURNING`` with Django's
value preparation — the same rows, one way slower.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from django.db import connection, models

# What a row is made of: (column, attribute name, field).
_Column = tuple[str, str, models.Field]
# Fields whose Python value is already its JSON form (None included).
_PLAIN = (
    models.CharField,
    models.TextField,
    models.IntegerField,
    models.FloatField,
    models.BooleanField,
    models.ForeignKey,
    models.JSONField,
)


@cache
def _columns(model: type[models.Model]) -> tuple[_Column, ...]:
    return tuple(
        (field.column, field.attname, field)
        for field in model._meta.concrete_fields
        if not field.primary_key
    )


@cache
def _plain(model: type[models.Model]) -> tuple[tuple[str, str], ...]:
    return tuple((c, name) for c, name, field in _columns(model) if isinstance(field, _PLAIN))


@cache
def _converted(model: type[models.Model]) -> tuple[tuple[str, str, models.Field], ...]:
    """The columns whose values need :func:`_json_value` (the rest are taken as they are)."""
    return tuple(c for c in _columns(model) if not isinstance(c[2], _PLAIN))


@cache
def _statement(model: type[models.Model], returning: tuple[str, ...], skip: bool) -> str:
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(column) for column, _a, _f in _columns(model))
    conflict = " ON CONFLICT DO NOTHING" if skip else ""
    back = ", ".join(connection.ops.quote_name(column) for column in returning)
    return (
        f"INSERT INTO {table} ({names}) SELECT {names} "  # noqa: S608 (identifiers only)
        f"FROM jsonb_populate_recordset(NULL::{table}, %s::jsonb){conflict} RETURNING {back}"
    )


def rows_insert(
    model: type[models.Model],
    objs: Sequence[models.Model],
    *,
    returning: Sequence[str] = ("id",),
    ignore_conflicts: bool = False,
) -> list[tuple[Any, ...]]:
    """Insert ``objs`` (unsaved instances of ``model``) in one statement, in the current
    transaction; the ``returning`` columns of each inserted row (a row skipped by
    ``ignore_conflicts`` returns nothing). Match the rows back by a unique column rather
    than by position: the order of ``RETURNING`` is not promised."""
    if not objs:
        return []
    columns = _columns(model)
    for obj in objs:
        for _column, _attname, field in columns:
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                field.pre_save(obj, add=True)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            document = json.dumps(
                [
                    {
                        column: _json_value(field, getattr(obj, name))
                        for column, name, field in columns
                    }
                    for obj in objs
                ],
                ensure_ascii=False,
                separators=(",", ":"),
            )
            cursor.execute(_statement(model, tuple(returning), ignore_conflicts), [document])
        else:
            cursor.execute(*_values_statement(model, objs, returning, ignore_conflicts))
        return list(cursor.fetchall())


def _json_value(field: models.Field, value: Any) -> Any:
    """The JSON form PostgreSQL's input function of the column reads back as ``value``."""
    if isinstance(field, models.JSONField):
        return value  # nested: jsonb columns take the JSON as it is
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return f"{value.total_seconds()} seconds"
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    return field.get_db_prep_save(value, connection)


def _values_statement(
    model: type[models.Model],
    objs: Sequence[models.Model],
    returning: Sequence[str],
    ignore_conflicts: bool,
) -> tuple[str, list[Any]]:
    columns = _columns(model)
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(column) for column, _a, _f in columns)
    row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    params = [
        field.get_db_prep_save(getattr(obj, attname), connection)
        for obj in objs
        for _column, attname, field in columns
    ]
    conflict = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    back = ", ".join(connection.ops.quote_name(column) for column in returning)
    sql = (
        f"INSERT INTO {table} ({names}) VALUES {', '.join([row] * len(objs))}"  # noqa: S608
        f"{conflict} RETURNING {back}"
    )
    return sql, params
