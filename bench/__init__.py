r"""`make bench [SCALE=N | SCALES=N,M]` (``python -m bench``): the pipeline's cost at scale, against its peers.

What it does, on throwaway databases (``--source-db``/``--analytics-db``, dropped at
the end) and a throwaway data dir under ``$DATA_DIR/bench/work``:

1. The peers' venvs, installed once under ``.bench/peers`` from pinned versions
   (:mod:`bench.peer_venvs`), before anything is timed.
2. A Northwind day: the source seeded from the pinned ``northwind.sql``, then
   ``scripts/run_day.sh`` (what ``make run`` runs) timed end to end, beside the same
   rows moved by COPY (each table out to a file and into a keyed copy) and by Sling
   and dlt (:mod:`bench.peers`). Then, when Airflow's venv exists, the same day
   through Airflow, trigger to result, with its timeline (:mod:`bench.airflow_day`).
3. The scaled source (:mod:`bench.source`): ``orders`` replicated N times with new
   ids, the CSV ``order_details`` replicated N times (N=1000: 2,155,000 rows), also
   loaded into the source database as ``bench_order_details``.
4. The COPY baseline of the same rows (:mod:`bench.copy_baseline`); each job run once
   for one day with ``meltano run``: wall seconds, rows, rows/s and the largest
   process of its tree (:mod:`bench.memory`); step 2's parts again, each timed on its
   own (:mod:`bench.step2`); the peers on the same rows, the stock MeltanoLabs path on
   a capped copy (:mod:`bench.stock_peer`).
5. At each further scale of ``--scales``, the jobs again, for their memory.
6. Issue 19's changes (:mod:`bench.changes`, after the Northwind day): a table of
   ``--changes-rows`` rows with 1,000 changed since the previous day, the data phase
   of steps 1 and 2 read ``INCREMENTAL`` against ``FULL_TABLE``; then ``LOG_BASED``
   against ``FULL_TABLE`` on a throwaway ``wal_level=logical`` cluster (:mod:`bench.log_changes`).

``--no-peers`` and ``--no-airflow`` skip those parts. Modules: ``memory`` (peak RSS
of a process tree, timed commands and pipes), ``source`` (the databases and the
scaled source), ``copy_baseline`` (psql's ``\copy``), ``step2`` (load, publish,
export apart), ``peer_venvs``, ``peer_io``, ``sling_peer``, ``dlt_peer`` (with
``dlt_script``, run by dlt's own Python), ``stock_peer``, ``peers``, ``airflow_day``,
``runner`` (the run), ``report`` (latest.json's entries, the charts' data, the
ratios, the goals, the printed table), ``page`` (latest.html), ``__main__``
(arguments).
"""
