"""Pure statistics on per-seed numbers: exact tests, paired estimates, multiplicity, decisions,
sequential looks and power."""
