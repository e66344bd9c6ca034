#!/usr/bin/env python
"""Train the behavioural-cloning baseline: the lower-level policy on the mission only.

Same flags, trainer, logs and checkpoints as train_tc.py, minus the thought-only flags
(--sg-coef, --stop-tf). Defaults are sized for a 2-core CPU; see --help.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Sequence

from babyai.common.cli import run
from babyai.training.trainer import train


def _train_tc_module():
    """scripts/ is not a package: load the sibling script that defines the shared flags."""
    path = Path(__file__).with_name("train_tc.py")
    spec = importlib.util.spec_from_file_location("_train_tc_flags", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_TC = _train_tc_module()


def main(argv: Sequence[str] | None = None):
    args = _TC.build_parser(use_thoughts=False).parse_args(argv)
    return train(_TC.config_from_args(args, use_thoughts=False))


if __name__ == "__main__":
    sys.exit(run(main))
