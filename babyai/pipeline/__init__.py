"""The end-to-end job: content-addressed stages that run the commands, and the Markdown report.

May import: every package above it, and `babyai.commands` only by module name in a
subprocess (never as a Python import).
"""
