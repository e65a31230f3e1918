"""Column types: the source's own, where the schema names it.

Step 1 records each column's SQL type as ``x-sql-datatype`` (e.g. ``smallint``,
``character varying(15)``, ``real``, ``bytea``). target-postgres maps only a few of
those names and otherwise guesses from the JSON type (every integer a bigint, every
number a numeric), so here any named type is used verbatim; the JSON type is the
fallback for schemas that name none.
"""

from __future__ import annotations

import typing as t

import sqlalchemy
from target_postgres.connector import PostgresConnector


class SourceSQLType(sqlalchemy.types.UserDefinedType):
    """A column type given as the SQL text the source's catalog printed."""

    cache_ok = True

    def __init__(self, sql_text: str) -> None:
        self.sql_text = sql_text

    def get_col_spec(self, **_: t.Any) -> str:
        """The type as written in CREATE TABLE."""
        return self.sql_text


class AnalyticsConnector(PostgresConnector):
    """target-postgres's connector, honouring every ``x-sql-datatype``."""

    def to_sql_type(self, jsonschema_type: dict) -> sqlalchemy.types.TypeEngine:
        """The source's type when the schema names it, else target-postgres's choice."""
        if sql_text := jsonschema_type.get("x-sql-datatype"):
            return SourceSQLType(sql_text)
        return super().to_sql_type(jsonschema_type)
