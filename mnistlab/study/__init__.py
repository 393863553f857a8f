"""Running a study:

- run.py: a spec expanded into planned runs, finished ones skipped, the rest handed to an
  executor, the [adaptive] looks; the study run that holds the spec;
- runner.py: one tracked run: an arm's config trained, every number written to the store;
- executors.py: where runs train: in this process, in local processes, or on Ray.
"""
