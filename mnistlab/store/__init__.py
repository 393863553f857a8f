"""The tracking store (MLflow); the only package that imports mlflow:

- connect.py: addresses and their checks, the creation lock, a client that has answered;
- sqlite_file.py: a SQLite store's file, checked and repaired only through SQLite;
- store.py: open_store and the Store it opens (experiments, runs, files, the study's spec);
- batches.py: MLflow's limits per log_batch call, and the calls that keep within them;
- replay.py: a spooled run written into the store after an outage;
- runs_view.py: the MLflow UI view mnistlab's links open (runs grouped by arm);
- records.py: runs and experiments as read back, plain records without mlflow types;
- histories.py: metric histories read in bulk;
- tracked_run.py: one run as tracked: its claim, heartbeats, contention, spooling;
- writer.py: the background writer that retries through outages;
- spool.py: a run's complete record on local disk while the store is away;
- liveness.py: pure rules: which runs are alive, which owns a config, which overlapped;
- provenance.py: the code version, libraries and machine every run records.
"""
