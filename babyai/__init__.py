"""Thought Cloning on BabyAI.

One subpackage per stage of the flow; a subpackage imports only those before it:

    common      errors, storage paths, seeds, runtime, command-line plumbing
    env         BabyAI levels, the thinking bot and its thoughts
    demos       episode records, demonstration files, their generation
    data        vocabulary, tokenized dataset, batches and BPTT windows
    agent       the two-level model, checkpoints, the batched rollout
    training    loss, schedules, the Trainer loop and its pieces
    evaluation  statistics, level sets, OOD / in-distribution / safety / declaration
    rl          PPO fine-tuning of trained agents
    reports     training curves and GIFs of what an agent thinks
    pipeline    the end-to-end job as content-addressed stages, and its report
    commands    one module per command-line command (console entry points `tc-*`)
"""

import importlib.util as _importlib_util

__version__ = "0.1.0"

_REQUIRED = ("gymnasium", "minigrid", "torch", "numpy", "blosc", "filelock", "tqdm", "matplotlib", "PIL")
_missing = [name for name in _REQUIRED if _importlib_util.find_spec(name) is None]
if _missing:
    raise ImportError(f"missing dependencies: {', '.join(_missing)}; install them with "
                      "`pip install -e .` in the repository root")
