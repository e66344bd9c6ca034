"""Thought Cloning on BabyAI.

Data flows one way through the package:
env (`envs`) -> bot and thoughts (`bot`, `thoughts`) -> demonstrations (`episode`, `demos`)
-> vocabulary and dataset (`vocab`, `dataset`) -> model (`model`) -> trainer (`train`)
-> evaluation (`evaluate`, `levels`, `safety`, `declaration`, `visualize`).
"""

__version__ = "0.1.0"
