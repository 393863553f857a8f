"""The report:

- tables.py: a study's title and verdicts as rows of text (terminal, report, MLflow alike);
- conclusion.py: the answer in words, from the numbers, and the reproducibility checklist;
- plots.py: the figures, from tidy frames and statistics;
- demo.py: each arm's first-seed run predicting the test set, from its stored predictions;
- render.py: the HTML page (templates/report.html.j2), the PDF and the CSV tables;
- publish.py: the report and verdicts written back to the study run, and fetched from it;
- ranking.py: a ranking as rows of text and as the study run's tags and ranking.json;
- ranking_plot.py: the ranking's critical-difference-style figure;
- ranking_section.py: the report's Ranking section (templates/ranking.html.j2).
"""
