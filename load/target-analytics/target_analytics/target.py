"""The target: MeltanoLabs target-postgres, loading one day's files into fresh tables for the publish step.

Why target-postgres is the base: it is the project's Postgres loader (the stack is
MeltanoLabs tap-postgres, target-csv and target-postgres, each extended in-repo), so
its settings (host, port, user, password, database, as Meltano passes them), its
checks of them and its SQL-target plumbing stay; ``TargetAnalytics`` adds the day
(``pipeline_date``) and replaces how a day is written:

- every run is a new load with an id of its own: its tables go into schemas
  ``pipeline_{day}_{load id}_{n}`` (one per analytics schema), so a load never touches
  the published day that readers see, and two days loading at once never meet. A run
  starts by taking the day's run lock and removing what earlier, unpublished loads of
  the same day left behind. Nothing here changes a published table:
  ``pipeline publish-analytics`` does, after reconciling the counts this load recorded
  with the step-1 receipts;
- the load uses one psycopg connection built by ``pipeline.core.connections.conninfo`` (the
  project's one way to reach the analytics database), not target-postgres's SQLAlchemy
  engine, which is never opened; target-postgres settings this load does not honour
  (another connection, another schema, record metadata, versions) are refused in one
  line instead of being ignored;
- a table that cannot be loaded (a reserved or untyped column, a type the analytics
  database lacks) does not stop the others from being checked: the run prints one line
  per bad table and column, then fails, so the day is not published.

The sink (``target_analytics.sinks``) says what it overrides of ``PostgresSink``.
"""

from __future__ import annotations

import copy
import datetime as dt
import sys
import typing as t

import psycopg
from psycopg import sql
from singer_sdk import typing as th
from target_postgres.target import TargetPostgres

from pipeline.core.connections import ANALYTICS, conninfo
from pipeline.core.dates import parse_pipeline_date
from pipeline.core.errors import PipelineError, connection_failure, first_line, run_plugin_cli
from pipeline.jobs import STEP2_JOB
from pipeline.runs.locks import hold_run_lock
from pipeline.warehouse.bookkeeping import ensure_project_schema, forget_unpublished
from pipeline.warehouse.loads import load_schema, new_load_id
from target_analytics.sinks import LoadSink

_CONNECTION = ("host", "port", "user", "password", "database")
_OWN_CONNECTION = "the connection is made from host, port, user, password and database"
_SNAPSHOTS = "the tables are typed day snapshots: no _sdc_ columns, no versions"
# target-postgres settings a day load does not honour: given, they are refused, not ignored.
_NOT_HONOURED = {
    "sqlalchemy_url": _OWN_CONNECTION,
    "ssl_enable": _OWN_CONNECTION,
    "ssl_client_certificate_enable": _OWN_CONNECTION,
    "default_target_schema": "each table's schema follows from its x-pipeline-table entry",
    "add_record_metadata": _SNAPSHOTS,
    "activate_version": _SNAPSHOTS,
    "hard_delete": _SNAPSHOTS,
    "interpret_content_encoding": "the day files are COPYed as they are",
    "sanitize_null_text_characters": "the day files are COPYed as they are",
}


def _config_jsonschema() -> dict:
    """target-postgres's settings plus the day, with defaults that fit a day load."""
    schema = copy.deepcopy(TargetPostgres.config_jsonschema)
    properties = schema["properties"]
    properties.update(
        th.PropertiesList(
            th.Property("pipeline_date", th.StringType, description="The day being loaded, YYYY-MM-DD."),
            th.Property(
                "password", th.StringType, secret=True, default="", description=properties["password"]["description"]
            ),
        ).to_dict()["properties"]
    )
    for name in ("add_record_metadata", "activate_version"):
        properties[name]["default"] = False
    del properties["default_target_schema"]["default"]
    schema["required"] = ["host", "user", "database"]
    return schema


def not_honoured(config: t.Mapping[str, t.Any]) -> str | None:
    """The one-line refusal of the first target-postgres setting given that this load does not honour."""
    given = [(name, why) for name, why in _NOT_HONOURED.items() if config.get(name)]
    if (config.get("ssh_tunnel") or {}).get("enable"):
        given.append(("ssh_tunnel", _OWN_CONNECTION))
    if not given:
        return None
    name, why = given[0]
    return f"target-analytics setting {name} is not supported ({why}): remove it from the loader's config"


class TargetAnalytics(TargetPostgres):
    """target-postgres loading one day of tap-lfs's files into the analytics database."""

    name = "target-analytics"
    package_name = "target-analytics"
    config_jsonschema = _config_jsonschema()
    default_sink_class = LoadSink

    def __init__(self, **kwargs: t.Any) -> None:
        super().__init__(**kwargs)
        if refusal := not_honoured(self.config):
            raise PipelineError(refusal)
        self.day: dt.date = parse_pipeline_date(self.config.get("pipeline_date"))
        hold_run_lock(STEP2_JOB, self.day)  # before anything of the day's loads is touched
        self.load_id = new_load_id()
        self.problems: list[str] = []
        self._load_schemas: dict[str, str] = {}
        self.connection = self._connect()
        self._remove_unpublished_loads()

    def _connect(self) -> psycopg.Connection:
        settings = {f"{ANALYTICS}_{key.upper()}": str(self.config.get(key) or "") for key in _CONNECTION}
        try:
            return psycopg.connect(conninfo(ANALYTICS, settings), connect_timeout=10, autocommit=True)
        except psycopg.OperationalError as exc:
            raise connection_failure(
                f"cannot reach the analytics database {self.config['database']}: {first_line(exc)}"
            ) from exc

    def _remove_unpublished_loads(self) -> None:
        """Drop the schemas of this day's loads that were never published (a failed earlier run)."""
        with self.connection.transaction():
            ensure_project_schema(self.connection)
            for schema in sorted(forget_unpublished(self.connection, self.day)):
                self.connection.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))

    def load_schema_for(self, schema_name: str) -> str:
        """The load's schema for the tables of analytics schema ``schema_name``, created on first use."""
        if schema_name not in self._load_schemas:
            schema = load_schema(self.day, self.load_id, len(self._load_schemas))
            self.connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            self._load_schemas[schema_name] = schema
        return self._load_schemas[schema_name]

    def process_endofpipe(self) -> None:
        """Fail, listing every refused table and column, before anything counts as loaded."""
        if self.problems:
            for line in self.problems:
                print(f"target-analytics: {line}", file=sys.stderr)
            raise PipelineError(
                f"refused to load {self.day}: {len(self.problems)} problem(s), each on a line above; nothing published"
            )
        super().process_endofpipe()
        self.connection.close()


def main() -> None:
    """Run the target; bad input ends it with one line on stderr."""
    run_plugin_cli("target-analytics", TargetAnalytics.cli)
