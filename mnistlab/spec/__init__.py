"""A study's specification, no torch needed:

- run.py: RunConfig (one run's settings, their checks, the config hash that is a run's
  identity), PlannedRun (an arm on one seed) and ConfigError;
- study.py: StudySpec (arms x seeds, claims, [adaptive]) with Arm, Claim and Adaptive;
- measures.py: what a claim's metric names (steps_to:ACC, epoch_train_seconds, ...);
- parse.py: reading a spec from TOML or from its stored record, every key checked;
- tables.py: each table of a spec read and checked: arms and settings, seeds, claims, adaptive;
- record.py: the spec's stored form (to_record) and older stored formats read back;
- limits.py: the limits names meet (characters, MLflow key and tag length, folder bytes);
- owndata.py: an .npz dataset resolved when a spec is read (its hash, path and sizes);
- netargs.py: a registered net's model_args checked against its signature;
- describe.py: an arm in words (its recipe, what it changes against the baseline);
- ranking.py: a spec's ranking request (compare = "all-pairs" or [ranking]), checked;
- studyname.py: a spec file's path given where a study name belongs, named with its study.
"""
