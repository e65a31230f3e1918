"""Airflow DAGs generated from a Meltano project's schedules, one DAG per schedule.

``pipeline.project`` reads the YAML, ``plan`` decides what each DAG is (pure, no Airflow),
``texts`` words the commands, log lines and docs it shows to people, ``airflow_dags``
(with ``operators``) builds the Airflow objects. Installed as a package (its
``pyproject.toml`` is in ``orchestrate/``), so no importer edits ``sys.path``. The DAG
file only calls :func:`dag_generator.airflow_dags.build_dags` on :func:`dag_generator.plan.plan_dags`.
"""
