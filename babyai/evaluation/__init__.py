"""Evaluation of trained agents: success statistics, the CSV/JSONL writer, out-of-distribution
level sets and their evaluator, the future-action declaration score and precrime
intervention (safety).

May import: `common`, `env`, `demos`, `data`, `agent`.
"""
