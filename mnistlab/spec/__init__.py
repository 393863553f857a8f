"""A study's specification: the run config (its identity and checks), the study spec, its TOML
form and its stored record."""
