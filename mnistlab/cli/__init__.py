"""The command line: the typer app and its commands."""
