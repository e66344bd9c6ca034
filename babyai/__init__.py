"""Thought Cloning on BabyAI.

Data flows one way through the package:
env (`envs`) -> bot and thoughts (`bot`, `thoughts`) -> demonstrations (`episode`, `demos`)
-> vocabulary and dataset (`vocab`, `dataset`) -> model (`model`) -> trainer (`train`)
-> evaluation (`evaluate`, `levels`, `safety`, `declaration`, `visualize`).
"""

import importlib.util as _importlib_util

__version__ = "0.1.0"

_REQUIRED = ("gymnasium", "minigrid", "torch", "numpy", "blosc", "tqdm", "matplotlib", "PIL")
_missing = [name for name in _REQUIRED if _importlib_util.find_spec(name) is None]
if _missing:
    raise ImportError(f"missing dependencies: {', '.join(_missing)}; install them with "
                      "`pip install -e .` in the repository root")
