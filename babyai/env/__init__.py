"""The environment and the expert: BabyAI levels (gymnasium + minigrid), the thinking bot that
acts and says why, and the sentences of its thoughts.

May import: `babyai.common`.
"""
