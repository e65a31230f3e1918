"""Airflow DAGs generated from a Meltano project's schedules, one DAG per schedule.

``project`` reads the YAML, ``plan`` decides what each DAG is (pure, no Airflow),
``airflow_dags`` builds the Airflow objects. The DAG file only calls
:func:`dag_generator.airflow_dags.build_dags` on :func:`dag_generator.plan.plan_dags`.
"""
