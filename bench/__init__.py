r"""`make bench [SCALE=N]` (``python -m bench``): the pipeline's cost at scale, against its peers in the same run.

What it does, on throwaway databases (``--source-db``/``--analytics-db``, dropped at
the end) and a throwaway data dir under ``$DATA_DIR/bench/work``:

1. A Northwind day: the source seeded from the pinned ``northwind.sql``, then
   ``scripts/run_day.sh`` (what ``make run`` runs) timed end to end, beside the same
   rows moved by COPY (each table out to a file and into a keyed copy) and, when the
   ``sling-linux-amd64`` wheel is installed, by Sling (:mod:`bench.sling_day`). Then,
   when Airflow's venv exists, the same day through Airflow, trigger to result
   (:mod:`bench.airflow_day`).
2. The scaled source (:mod:`bench.source`): ``orders`` replicated N times with new
   ids, the CSV ``order_details`` replicated N times (N=1000: 2,155,000 rows), also
   loaded into the source database as ``bench_order_details``.
3. Each job run once for one day with ``meltano run``: wall seconds, rows, rows/s and
   the peak RSS of the largest process of its tree (:mod:`bench.memory`); then step 2's
   parts again, each timed on its own (:mod:`bench.step2`).
4. The COPY baseline of the same rows, in the same run (:mod:`bench.copy_baseline`).

Modules: ``memory`` (peak RSS of a process tree, timed commands), ``source`` (the
databases and the scaled source), ``copy_baseline`` (psql's ``\copy``), ``step2``
(load, publish, export apart), ``sling_day``, ``airflow_day``, ``runner`` (the run),
``report`` (latest.json's entries and the printed table), ``__main__`` (arguments).
"""
