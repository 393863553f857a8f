"""A study's results: which runs are its evidence, their measures and statistics.

- evidence.py: which runs count, their per-run measures, verdicts and comparisons;
- budget.py: accuracy at an equal wall-clock budget (the paper's question is about cost).
"""
