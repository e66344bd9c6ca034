"""The command-line commands, one module each with `main(argv=None)` (and `cli()`, the
console entry point named in setup.py). A command parses its flags into a config and
calls the package; nothing else lives here.

May import: every other package of `babyai`. Nothing imports `babyai.commands` except
other commands (the pipeline runs them as `python -m babyai.commands.<name>`).
"""
