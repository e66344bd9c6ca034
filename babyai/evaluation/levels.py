"""Out-of-distribution level sets: seeds bucketed by behavioural and cognitive difficulty.

A level set has the original structure (written as JSON by :mod:`babyai.evaluation.level_files`;
original pickles are read safely there)::

    {'demo':    {25: {seed: info, ...}, 75: {...}, ..., 375: {...}, '425+': {...}},
     'mission': {1: {seed: info, ...}, ..., 9: {...}}}

Evaluation only needs the seeds (the inner keys); `info` records why a seed is where it is:
the bot's noise-free solution length, the mission, its complexity and its cognitive level.

The two difficulties (behavioural: the bot's solution length; cognitive: the mission's
complexity) are defined in :mod:`babyai.evaluation.difficulty`.

**Seeds** are drawn consecutively from `LEVEL_SET_START` (10**12, see
:mod:`babyai.common.seeds`) plus an offset. Demonstration seeds are `base + k + a * 10**9`, plus
`5 * 10**8` for validation, with `a` < 100 redraw attempts: all below 10**11 for any
dataset whose base seed plus episode count stays under 5 * 10**8. Level-set seeds are at
least 10**12, so they are disjoint from every demonstration and validation seed (a test
checks this against the generator's constants). Each bin keeps the first `per_bin` seeds in
seed order that fall into it, so the result depends only on (env, offset, per_bin,
max_draws), never on the number of worker processes.
"""
from __future__ import annotations

import logging
import multiprocessing
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

from babyai.common.cli import non_negative_int, positive_int
from babyai.common.errors import UserError
from babyai.common.seeds import LEVEL_SET_START
from babyai.common.locks import writer_lock
from babyai.evaluation.level_files import (level_set_settings, read_level_set,  # noqa: F401
                                           read_partial, write_level_set, write_partial)
from babyai.evaluation.difficulty import (BEHAVIOURAL, COGNITIVE, DEMO_LABELS, DIFFICULTY_KINDS,
                                          DIFFICULTY_TITLES, MISSION_LABELS, in_training_range,
                                          measure_seed)

logger = logging.getLogger(__name__)


PARTIAL_VERSION = 2


def _measure(job: tuple[str, int]) -> dict:
    return measure_seed(*job)


# --------------------------------------------------------------------------- building a set

@dataclass(frozen=True)
class LevelSetConfig:
    """How to build one out-of-distribution level set."""

    env: str = "BabyAI-BossLevel-v0"
    """The BabyAI level, e.g. BossLevel or BabyAI-BossLevel-v0."""
    per_bin: int = field(default=100, metadata={"type": positive_int})
    """Seeds wanted in every bin, behavioural and cognitive (the paper used hundreds)."""
    seed: int = field(default=0, metadata={"type": non_negative_int})
    """Offset of the seed range: level seeds are 10**12 + seed + i."""
    max_draws: int = field(default=20000, metadata={"type": positive_int})
    """Bound on the seeds measured; bins still short then are reported (BossLevel costs
    about 80 ms of CPU per seed: 20000 draws take about 15 minutes on 2 free cores)."""
    workers: int = field(default=1, metadata={"type": positive_int})
    """Worker processes measuring seeds (the result does not depend on it)."""
    out: Path = Path("levels.pkl")
    """Where the set goes (JSON): a name under <storage>/levels or a path ending in .pkl (a
    `.partial` sibling holds progress for resuming)."""

    overwrite: bool = False
    """Replace an existing file at the output that is not this level set (another set, or
    any other file)."""

    def settings(self) -> dict:
        """What determines the set's content (recorded in the file)."""
        return {"env": self.env, "per_bin": self.per_bin, "seed": self.seed,
                "max_draws": self.max_draws}


@dataclass
class LevelSetResult:
    """A level set and how it was filled."""

    levels: dict
    """{'demo': {label: {seed: info}}, 'mission': {label: {seed: info}}}."""
    draws: int
    """Seeds measured."""
    unsolved: int
    """Seeds the bot did not solve (kept nowhere)."""
    population: dict = field(default_factory=dict)
    """{'demo': {label: n}, 'mission': {label: n}}: where all solved draws fell, i.e. how
    ordinary draws of the level (the training distribution) spread over the bins."""
    per_bin: int = 0

    def short_bins(self) -> dict[str, dict]:
        """{'demo'|'mission': {label: count}} for bins with fewer than `per_bin` seeds."""
        return {kind: {label: len(seeds) for label, seeds in bins.items()
                       if len(seeds) < self.per_bin}
                for kind, bins in self.levels.items()}


def normalize_env_name(name: str) -> str:
    """Accept `BossLevel` as well as `BabyAI-BossLevel-v0`."""
    if not name.startswith("BabyAI-"):
        name = f"BabyAI-{name}"
    if not name.rsplit("-", 1)[-1].startswith("v"):
        name = f"{name}-v0"
    return name


def empty_level_set() -> dict:
    return {BEHAVIOURAL: {label: {} for label in DEMO_LABELS},
            COGNITIVE: {label: {} for label in MISSION_LABELS}}


def _partial_path(out: Path) -> Path:
    return Path(out).with_name(Path(out).name + ".partial")


def _load_partial(config: LevelSetConfig) -> list[dict]:
    """Seeds measured by an earlier, interrupted run with the same level and offset."""
    path = _partial_path(config.out)
    if not path.exists():
        return []
    state = read_partial(path)
    key = [PARTIAL_VERSION, config.env, config.seed]
    if state["key"] != key:
        logger.warning("ignoring %s: it was made for another level or seed offset", path)
        return []
    return list(state["measured"])


def _save_partial(config: LevelSetConfig, measured: list[dict]) -> None:
    write_partial(_partial_path(config.out), [PARTIAL_VERSION, config.env, config.seed],
                  measured)


def _measurements(config: LevelSetConfig, start: int) -> Iterator[dict]:
    """Measurements of seeds from draw index `start` on, in seed order."""
    jobs = ((config.env, LEVEL_SET_START + config.seed + i)
            for i in range(start, config.max_draws))
    if config.workers <= 1:
        yield from map(_measure, jobs)
        return
    with multiprocessing.get_context("fork").Pool(config.workers) as pool:
        yield from pool.imap(_measure, jobs, chunksize=4)


def build_level_set(config: LevelSetConfig, progress: bool = True,
                    save_every: float = 30.0) -> LevelSetResult:
    """Draw seeds until every bin has `per_bin` seeds or `max_draws` seeds are measured.

    Progress is saved to `<out>.partial` every `save_every` seconds; rerunning the same
    command resumes from there. The finished set is written atomically to `out`.
    """
    if config.per_bin <= 0 or config.max_draws <= 0:
        raise UserError("per_bin and max_draws must be positive")
    check_output(config)
    with writer_lock(config.out, "level set"):
        return _build(config, progress, save_every)


def check_output(config: LevelSetConfig) -> None:
    """Refuse, before any work, an output that is a directory or a file this command did
    not make with these settings (unless `overwrite`)."""
    out = Path(config.out)
    if out.is_dir():
        raise UserError(f"--out {out} is a directory; give a file name such as "
                        f"{out / 'levels.pkl'}")
    if not out.exists() or config.overwrite:
        return
    settings = level_set_settings(out)
    if settings == config.settings():
        return  # the same set again (building is deterministic)
    what = "a level set with other settings" if settings is not None else \
        "not a level set made by this command"
    raise UserError(f"{out} exists and is {what}; choose another --out, or pass --overwrite "
                    "to replace it")


def _build(config: LevelSetConfig, progress: bool, save_every: float) -> LevelSetResult:
    measured = _load_partial(config)[: config.max_draws]
    if measured:
        logger.info("resuming: %d seeds already measured", len(measured))
    result = LevelSetResult(levels=empty_level_set(), draws=0, unsolved=0,
                            population={BEHAVIOURAL: {label: 0 for label in DEMO_LABELS},
                                        COGNITIVE: {label: 0 for label in MISSION_LABELS}},
                            per_bin=config.per_bin)

    def full() -> bool:
        return all(len(seeds) >= config.per_bin
                   for bins in result.levels.values() for seeds in bins.values())

    def add(info: dict) -> None:
        result.draws += 1
        if not info["solved"]:
            result.unsolved += 1
            return
        for kind, label in ((BEHAVIOURAL, info["demo_bin"]), (COGNITIVE, info["cognitive"])):
            result.population[kind][label] += 1
            if len(result.levels[kind][label]) < config.per_bin:
                result.levels[kind][label][info["seed"]] = info

    bar = tqdm(total=config.max_draws, desc="measuring seeds", unit="seed",
               disable=not progress)
    for info in measured:
        add(info)
        bar.update(1)
    last_save = time.monotonic()
    if not full() and len(measured) < config.max_draws:
        stream = _measurements(config, len(measured))
        try:
            for info in stream:
                measured.append(info)
                add(info)
                bar.update(1)
                bar.set_postfix(short=_short_count(result))
                if full():
                    break
                if time.monotonic() - last_save > save_every:
                    _save_partial(config, measured)
                    last_save = time.monotonic()
        except BaseException:
            _save_partial(config, measured)
            raise
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
    bar.close()
    write_level_set(config.out, result.levels, config.env, config.settings())
    partial = _partial_path(config.out)
    if partial.exists():
        partial.unlink()
    return result


def _short_count(result: LevelSetResult) -> int:
    return sum(len(bins) for bins in result.short_bins().values())


# --------------------------------------------------------------------------- reading and reporting

def format_table(result: LevelSetResult) -> str:
    """Counts per bin, where ordinary draws (the training distribution) fall, and shortfalls."""
    lines = []
    for kind in DIFFICULTY_KINDS:
        total = sum(result.population[kind].values()) or 1
        lines.append(DIFFICULTY_TITLES[kind])
        lines.append(f"  {'bin':>6} {'kept':>6} {'wanted':>6} {'share of draws':>15}  note")
        for label, seeds in result.levels[kind].items():
            share = result.population[kind][label] / total
            notes = []
            if in_training_range(kind, label):
                notes.append("paper's training range")
            if len(seeds) < result.per_bin:
                notes.append(f"SHORT by {result.per_bin - len(seeds)}")
            lines.append(f"  {str(label):>6} {len(seeds):>6} {result.per_bin:>6} "
                         f"{share:>14.1%}  {', '.join(notes)}")
    lines.append(f"{result.draws} seeds measured, {result.unsolved} not solved by the bot; "
                 "'share of draws' is where ordinary draws of the level - the distribution "
                 "demonstrations come from - fall")
    short = {kind: bins for kind, bins in result.short_bins().items() if bins}
    if short:
        lines.append("bins left short (raise --max-draws to fill them): " + "; ".join(
            f"{kind} {label}: {count}/{result.per_bin}"
            for kind, bins in short.items() for label, count in bins.items()))
    else:
        lines.append("every bin is full")
    return "\n".join(lines)
