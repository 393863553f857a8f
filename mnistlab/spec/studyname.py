"""A study's name where a command takes one (analyze, report, power, fetch-report): a spec
file's path given there instead is named with the study it holds, and the `mnistlab study`
hint names a spec path that exists rather than guessing experiments/NAME.toml."""

from __future__ import annotations

from pathlib import Path

from mnistlab.errors import command_line
from mnistlab.spec.run import ConfigError

SPEC_SUFFIX = ".toml"


def spec_path_problem(argument: str, command: str) -> str | None:
    """Why `argument` is a spec file, not a study name, with the command to run instead; None
    when it is not an existing file. A file that is not a readable spec is said so too."""
    path = Path(argument)
    if not path.is_file():
        return None
    from mnistlab.spec.parse import read_toml

    try:
        name = read_toml(path).get("name")
    except ConfigError as error:
        return f"{argument} is a file, not a study name ({error}). Give the study's name, as in its spec's name key."
    if not isinstance(name, str) or not name:
        return (
            f"{argument} is a file, not a study name, and it has no name key. Give the study's "
            f"name, as in its spec's name = ..., e.g. mnistlab {command} paper."
        )
    return (
        f"{argument} is a spec file; its study is called {name!r}: {command_line(command, name)}. "
        f"(If that study has not run yet: {command_line('study', argument)} first.)"
    )


def run_spec_hint(study: str) -> str:
    """The `mnistlab study ...` command that would create `study`: its spec where it is
    found (the argument itself, or experiments/NAME.toml), else the spec whose name it is."""
    stem = study[: -len(SPEC_SUFFIX)] if study.endswith(SPEC_SUFFIX) else study
    for candidate in (Path(study), Path("experiments") / f"{stem}{SPEC_SUFFIX}"):
        if candidate.is_file():
            return f"Run `{command_line('study', candidate)}` first"
    return f"Run `mnistlab study SPEC.toml` first on the spec whose name = {stem!r}"
