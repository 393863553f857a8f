"""The report:

- tables.py: a study's title and verdicts as rows of text (terminal, report, MLflow alike);
- conclusion.py: the answer in words, from the numbers, and the reproducibility checklist;
- clock.py: the paper's cost question in numbers: seconds to each threshold, the time ratio
  (bounds where a run never got there), accuracy at equal steps and at equal training time;
- plots.py: the figures, from tidy frames and statistics;
- demo.py: each arm's first-seed run predicting the test set, from its stored predictions;
- render.py: the HTML page (templates/report.html.j2), the PDF and the CSV tables;
- publish.py: the report and verdicts written back to the study run, and fetched from it.
"""
