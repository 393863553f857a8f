"""The command line:

- app.py: the typer app and its thin commands (options, then a call into the package that
  does the work);
- options.py: the options several commands share, and one run's defaults (RunConfig's own);
- failures.py: expected failures as one paragraph and a non-zero exit, never a traceback;
- display.py: everything the commands show beyond a line of text (the plain console,
  progress, run lines, warnings, the summary, verdict and power tables);
- ranking_display.py: the ranking's tables.
"""
