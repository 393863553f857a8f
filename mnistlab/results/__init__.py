"""A study's results, from its stored runs:

- evidence.py: which runs are the study's evidence (StudyResults), and their statistics;
- features.py: each run's measures from its histories (steps and seconds to a threshold, loss
  fluctuation, final accuracy, ...), one row per run; the per-arm summary;
- timings.py: the clock's measures: contended runs left out, train time to each threshold;
- notes.py: the caveats stated beside the verdicts, one function each;
- ranking.py: the ranking of the arms when the spec asks for one;
- budget.py: accuracy at an equal wall-clock budget (the paper's question is about cost).
"""
