"""The command line: app.py holds the typer app and its thin commands (options, then a call
into the package that does the work); display.py everything they show beyond a line of text
(the plain console, progress, run lines, warnings, the summary, verdict and power tables);
ranking_display.py the ranking's tables."""
