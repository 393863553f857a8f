"""The tracking store (MLflow): addresses and checks, the store, run records, bulk histories,
the tracked run with its background writer and spool, and process liveness."""
