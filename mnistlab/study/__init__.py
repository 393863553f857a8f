"""Running a study: the plan (what to train), the looks, one tracked run, and the executors."""
