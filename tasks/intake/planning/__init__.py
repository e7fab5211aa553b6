"""The planner: a plan spec (TOML) becomes a brief that `validate` accepts, spread over the spec's grid.

It lives in `tasks.intake` because what it writes is the intake's input: it needs the brief's columns
(`tasks.intake.brief`), the metadata fields (`tasks.intake.fields`), the validator and the cost estimate
(`tasks.intake.validate`, `tasks.intake.plan`) and the contract, and nothing of a higher layer. Its style
vocabulary is its own data (`vocabulary.py`): the pipeline may not import the engine's styles.
"""
