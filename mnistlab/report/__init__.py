"""The report:

- tables.py: a study's title and verdicts as rows of text (terminal, report, MLflow alike);
- conclusion.py: the answer in words, from the numbers, and the reproducibility checklist;
- clock.py: the paper's cost question in numbers: seconds to each threshold, the time ratio
  (bounds where a run never got there), accuracy at equal steps and at equal training time;
- plots.py: the figures drawn, from tidy frames and statistics;
- fonts.py: the fonts a figure falls back along, and the characters none of them can draw;
- demo.py: each arm's first-seed run predicting the test set, from its stored predictions;
- figures.py: each figure of the report with its title and caption;
- sections.py: the report's text sections as rows and sentences (setup, runs, limits, ...);
- links.py: the store as a reader should see it, and the study's pages in the MLflow UI;
- render.py: the HTML page (templates/report.html.j2), the PDF and the CSV tables;
- destination.py: the output folder checked first, and the whole set swapped in at once;
- publish.py: the report and verdicts written back to the study run, and fetched from it;
- ranking.py: a ranking as rows of text and as the study run's tags and ranking.json;
- ranking_plot.py: the ranking's critical-difference-style figure;
- ranking_section.py: the report's Ranking section (templates/ranking.html.j2).
"""
