"""The target: target-postgres with a fresh staging schema per day.

target-postgres 0.8.1 ignores ``load_method``: it upserts on key properties and
otherwise appends, so loading a day twice into the same tables would duplicate
rows. Here each run starts by dropping and recreating the day's staging schema;
the job's publish step then swaps the day into the final tables in one transaction.
"""

from __future__ import annotations

import typing as t

import sqlalchemy
from singer_sdk import typing as th
from target_postgres.target import TargetPostgres

from pipeline.dates import parse_pipeline_date
from pipeline.errors import PipelineError, run_plugin_cli
from pipeline.locks import STEP2_JOB, hold_run_lock
from pipeline.staging import staging_schema
from target_analytics.connector import AnalyticsConnector
from target_analytics.sinks import StagingSink

_PIPELINE_DATE = th.Property("pipeline_date", th.StringType, description="The day being loaded, YYYY-MM-DD.")


class TargetAnalytics(TargetPostgres):
    """Loads one day into its own staging schema."""

    name = "target-analytics"
    config_jsonschema: t.ClassVar[dict] = {
        **TargetPostgres.config_jsonschema,
        "properties": {**TargetPostgres.config_jsonschema["properties"], **_PIPELINE_DATE.to_dict()},
    }
    default_sink_class = StagingSink

    def __init__(self, **kwargs: t.Any) -> None:
        super().__init__(**kwargs)
        self._reset_staging_schema()

    def _reset_staging_schema(self) -> None:
        """Before any message is read: refuse a bad day, then give the day an empty staging schema."""
        day = parse_pipeline_date(self.config.get("pipeline_date"))
        hold_run_lock(STEP2_JOB, day.isoformat())  # no other run of the day loads while this one does
        schema = staging_schema(day)
        engine = sqlalchemy.create_engine(AnalyticsConnector(dict(self.config)).sqlalchemy_url)
        try:
            with engine.begin() as connection:
                connection.execute(sqlalchemy.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
        except sqlalchemy.exc.OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0]
            raise PipelineError(f"cannot reach the analytics database: {reason}") from exc
        finally:
            engine.dispose()


def main() -> None:
    """Run the target; bad input ends it with one line on stderr."""
    run_plugin_cli("target-analytics", TargetAnalytics.cli)
