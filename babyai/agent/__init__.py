"""The agent: the two-level Thought Cloning model (and the BC baseline), its checkpoints, and
the batched rollout that plays it in environments.

May import: `babyai.common`, `babyai.env`, `babyai.demos`, `babyai.data`.
"""
