"""Per-family weights of the thought loss (`--thought-weights`).

The bot's thoughts are far from evenly spread over their families: on MiniBossLevel "open
door" covers 37% of the demonstration steps, while the thoughts that recover from a wrong
pick-up or clear an obstacle ("drop <object> temporary", "pickup <object> to pick up
previous carrying", "pickup key", "unlock", "close") cover 1-3% each, and they are the
ones the agent needs most once it is off the bot's path. Weighting a step's thought NLL by
its family re-balances what the upper level learns without touching the lower level's
action loss.

A spec is either `balanced` (each family weighted by the inverse square root of its share
of the training steps) or `FAMILY=W[,FAMILY=W...]` (families not listed weigh 1). Either
way the weights are then scaled so that their mean over the training steps is 1: the
thought term keeps the overall size `--sg-coef` gives it, only its spread over families
changes.
"""
from __future__ import annotations

import argparse
import math
from typing import Sequence

import numpy as np

from babyai.common.errors import UserError
from babyai.env.thoughts import FAMILY_NAMES, UNKNOWN_FAMILY, thought_family

BALANCED = "balanced"


def parse_thought_weights(spec: str) -> dict[str, float] | str:
    """`balanced`, or the {family: weight} of `FAMILY=W,...`; a clear error otherwise."""
    text = spec.strip()
    if text == BALANCED:
        return BALANCED
    weights: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep:
            raise UserError(f"--thought-weights: {item!r} is not FAMILY=WEIGHT "
                            f"(or use '{BALANCED}')")
        if name not in FAMILY_NAMES and name != UNKNOWN_FAMILY:
            raise UserError(f"--thought-weights: unknown family {name!r}; families: "
                            f"{', '.join(FAMILY_NAMES)}")
        if name in weights:
            raise UserError(f"--thought-weights: family {name!r} given twice")
        try:
            weight = float(value)
        except ValueError:
            raise UserError(f"--thought-weights: weight of {name!r} is not a number: "
                            f"{value!r}") from None
        if not math.isfinite(weight) or weight < 0:
            raise UserError(f"--thought-weights: weight of {name!r} must be finite and "
                            f">= 0, got {value!r}")
        weights[name] = weight
    if not weights:
        raise UserError(f"--thought-weights is empty: give '{BALANCED}' or FAMILY=WEIGHT,...")
    return weights


def check_thought_weights(spec: str) -> str:
    """An argparse type: the spec unchanged once it parses."""
    try:
        parse_thought_weights(spec)
    except UserError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--thought-weights: ")) from None
    return spec


def family_weights(spec: str, step_families: Sequence[str]) -> dict[str, float]:
    """The weight of every family present in `step_families` (one entry per training
    step), normalised to mean 1 over those steps."""
    families, counts = np.unique(np.asarray(step_families, dtype=object), return_counts=True)
    share = dict(zip(families.tolist(), (counts / counts.sum()).tolist()))
    parsed = parse_thought_weights(spec)
    if parsed == BALANCED:
        raw = {family: 1.0 / math.sqrt(p) for family, p in share.items()}
    else:
        raw = {family: parsed.get(family, 1.0) for family in share}
    mean = sum(share[family] * weight for family, weight in raw.items())
    if mean <= 0:
        raise UserError(f"--thought-weights {spec!r} gives every training step weight 0")
    return {family: weight / mean for family, weight in raw.items()}


def thought_weight_table(spec: str, thought_texts: Sequence[str],
                         thought_ids: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """Per row of a dataset's thought table, the weight of its thought's family; and the
    family weights (normalised over the steps `thought_ids` of the dataset)."""
    row_families = [thought_family(text) for text in thought_texts]
    counts = np.bincount(np.asarray(thought_ids, dtype=np.int64), minlength=len(thought_texts))
    step_families = np.repeat(np.asarray(row_families, dtype=object), counts)
    weights = family_weights(spec, step_families)
    table = np.asarray([weights[family] if counts[row] else 1.0
                        for row, family in enumerate(row_families)], dtype=np.float32)
    return table, weights
