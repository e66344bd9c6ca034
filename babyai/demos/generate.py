"""Generating thought-annotated demonstrations with the (noisy) thinking bot.

Seeds (:mod:`babyai.common.seeds`). Episode `k` of a dataset (0-based) first tries the
environment seed `seed + k`; if the bot fails (reward 0, an exception, or more steps than
`filter_steps`), attempt `a` uses `seed + k + a * 10**9`. Validation episodes use the same
scheme shifted by `VALID_DEMO_OFFSET = 5 * 10**8`. So an episode's seed depends only on its index, never on
the order in which workers finish, on sharding, or on how many episodes are asked for;
training and validation seeds never overlap as long as each split has fewer than 5*10^8
episodes. The seed actually used is stored with each episode.

Files. A run writes `<demos>.pkl` and `<demos>_valid.pkl`, saved atomically every
`save_interval` episodes; re-running the same command continues a partial file. With
`num_shards > 1` each shard writes `<demos>.shards/shard-IIII-of-NNNN.pkl` (and the same
under `<demos>_valid.shards/`), covering a contiguous range of episode indices;
:func:`merge_shards` joins them into the file a single run would have written, byte for
byte.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import gymnasium as gym
import minigrid
import numpy as np
from minigrid.core.actions import Actions
from tqdm import tqdm

from babyai.common.cli import non_negative_int, positive_int, probability
from babyai.common.errors import UserError
from babyai.common.locks import writer_lock
from babyai.common.seeds import MAX_ATTEMPTS, VALID_DEMO_OFFSET, demo_seed
from babyai.common.storage import ensure_writable_dir, valid_path
from babyai.demos.episode import Episode
from babyai.demos.files import PackedEpisode, read_demo_file, save_demos, settings_id
from babyai.env.envs import ACTION_NAMES, cached_env, check_level
from babyai.env.bot import play_bot
from babyai.env.thoughts import random_thought, thought_family

logger = logging.getLogger(__name__)

NOISE_ACTIONS = (Actions.left, Actions.right, Actions.forward)
"""Noise moves."""
MAX_NOISE_SEGMENT = 5

OPTIONAL_SETTINGS = {"slip_rate": 0.0}
"""Settings a file records only when they differ from these defaults (ours, not the
paper's), so that files made without them keep their bytes and run ids."""


def recorded_setting(meta: dict, key: str) -> object:
    """A file's value of a generation setting, the default where it records none."""
    return meta.get(key, OPTIONAL_SETTINGS.get(key))


# --------------------------------------------------------------------------- one episode


class Failure(NamedTuple):
    """Why an attempt produced no episode."""

    seed: int
    reason: str


def attempt_episode(env_name: str, seed: int, noise_rate: float, filter_steps: int = 0,
                    raise_bot_failure: bool = False, slip_rate: float = 0.0) -> Episode | Failure:
    """Play one level with the thinking bot, injecting noise and slips.

    Noise (the paper's): at each step outside a noise segment, a segment starts with
    probability `noise_rate`; its length is uniform in 1..5, its actions uniform among
    left/right/forward, and its thought one random plausible sentence held for the whole
    segment. Noise actions and thoughts are recorded as the demonstration's own.

    Slips (ours, default off): at a step where the agent's hands are empty, it faces an
    object it could pick up and the bot suggests anything but picking it up, the agent
    picks it up anyway with probability `slip_rate`. The demonstration records the bot's
    suggestion and thought for that state, not the pick-up, so a learner sees the state
    after a wrong pick-up and the bot's recovery from it (minigrid's bot drops the object
    again) without being taught to make the mistake. Noise takes precedence over a slip.

    The bot re-plans at every step, told the action really taken whenever it differs
    from its suggestion. The noise generator is seeded by the level seed, so an episode
    depends on its seed only. `info["noise_segments"]` lists (first step, length) of each
    noise segment (a segment cut short by the end of the episode keeps its drawn length),
    `info["slips"]` the steps that slipped.
    """
    rng = np.random.default_rng([seed, 20230601])
    slip_rng = np.random.default_rng([seed, 20261123])
    env = cached_env(env_name)
    noise = {"left": 0, "thought": ""}
    segments: list[tuple[int, int]] = []
    slips: list[int] = []

    def perturb(step: int, suggestion: int, thought: str) -> tuple[int, int, str]:
        if noise["left"] == 0 and noise_rate > 0 and rng.random() < noise_rate:
            noise["left"] = int(rng.integers(1, MAX_NOISE_SEGMENT + 1))
            noise["thought"] = random_thought(rng)
            segments.append((step, noise["left"]))
        if noise["left"] > 0:
            noise["left"] -= 1
            action = int(NOISE_ACTIONS[rng.integers(len(NOISE_ACTIONS))])
            return action, action, noise["thought"]
        if slip_rate > 0 and can_slip(env, suggestion) and slip_rng.random() < slip_rate:
            slips.append(step)
            return int(Actions.pickup), suggestion, thought
        return suggestion, suggestion, thought

    played = play_bot(env, seed, perturb=perturb, max_actions=filter_steps)
    if played.failure is not None:
        if raise_bot_failure:
            raise played.failure
        return Failure(seed, str(played.failure))
    if played.over_limit:
        return Failure(seed, f"longer than {filter_steps} steps")
    if played.reward <= 0:
        return Failure(seed, "the bot did not complete the mission")
    if filter_steps and len(played.actions) > filter_steps:
        return Failure(seed, f"longer than {filter_steps} steps")
    return Episode(played.mission, np.stack(played.images), played.directions, played.actions,
                   played.thoughts, seed, info={"noise_segments": segments, "slips": slips})


def can_slip(env: gym.Env, suggestion: int) -> bool:
    """Whether a slip is possible now: empty hands, facing an object that can be picked
    up, and the bot not about to pick it up itself."""
    world = env.unwrapped
    if suggestion == Actions.pickup or world.carrying is not None:
        return False
    ahead = world.grid.get(*world.front_pos)
    return ahead is not None and ahead.can_pickup()


def generate_episode(env_name: str, seed: int, noise_rate: float, filter_steps: int = 0,
                     raise_bot_failure: bool = False, slip_rate: float = 0.0) -> Episode | None:
    """One episode on the level of `seed`, or None if the bot fails (redraw another seed)."""
    result = attempt_episode(env_name, seed, noise_rate, filter_steps, raise_bot_failure,
                             slip_rate)
    return result if isinstance(result, Episode) else None


# --------------------------------------------------------------------------- datasets


@dataclass(frozen=True)
class GenerationConfig:
    """What to generate; everything that determines the file's bytes."""

    env: str = "BabyAI-BossLevel-v0"
    """BabyAI level id."""
    episodes: int = field(default=1000, metadata={"type": positive_int})
    """Training episodes (whole dataset, all shards together)."""
    valid_episodes: int = field(default=512, metadata={"type": non_negative_int})
    """Validation episodes, written to NAME_valid.pkl (0 = none)."""
    seed: int = field(default=1, metadata={"type": non_negative_int})
    """Base seed: training episode k uses seed + k, validation episode k seed + 5e8 + k,
    and a failed attempt is redrawn 1e9 further."""
    noise_rate: float = field(default=0.01, metadata={"type": probability})
    """Per-step probability of starting a noise segment of 1-5 random moves."""
    slip_rate: float = field(default=0.0, metadata={"type": probability})
    """Probability of a slip (picking up an object the bot does not want, recorded with the
    bot's label, so that the demos show recoveries) at each step where one is possible;
    0 = none, as in the paper."""
    filter_steps: int = field(default=0, metadata={"type": non_negative_int})
    """Redraw episodes longer than this many steps (0 = keep all)."""
    crash_on_exception: bool = field(default=False, metadata={"flag": False})
    """Raise when the bot raises instead of warning and redrawing."""

    def meta(self, valid: bool) -> dict:
        """The settings recorded in (and checked against) a file of this run."""
        meta = {"env": self.env, "seed": self.seed, "noise_rate": self.noise_rate,
                "filter_steps": self.filter_steps, "split": "valid" if valid else "train",
                "seed_scheme": "seed + index + attempt*1e9 (+5e8 for valid)",
                "minigrid": minigrid.__version__, "run_id": self.run_id()}
        return self._with_optional(meta)

    def _with_optional(self, settings: dict) -> dict:
        """`settings` plus each of :data:`OPTIONAL_SETTINGS` that is not at its default."""
        chosen = {key: getattr(self, key) for key, default in OPTIONAL_SETTINGS.items()
                  if getattr(self, key) != default}
        return {**settings, **chosen}

    def run_id(self) -> str:
        """Ties a training file to its `_valid` file (checked when training loads them): the
        same for both splits of one generation, different for any other settings. A hash,
        not a random id, so the same flags still give byte-identical files."""
        settings = {"env": self.env, "seed": self.seed, "noise_rate": self.noise_rate,
                    "filter_steps": self.filter_steps, "episodes": self.episodes,
                    "valid_episodes": self.valid_episodes, "minigrid": minigrid.__version__}
        return settings_id(self._with_optional(settings))


@dataclass(frozen=True)
class RunConfig:
    """How to run a generation: output, parallelism, sharding, saving."""

    demos_path: Path = field(metadata={"flag": False})
    """Training file (`..._valid.pkl` is written beside it)."""
    workers: int = field(default=1, metadata={"type": positive_int, "aliases": ["--jobs"]})
    """Local worker processes (--jobs is an alias); the output does not depend on it."""
    shard: int = field(default=0, metadata={"type": non_negative_int})
    """Index of the shard this process writes (0-based, with --num-shards)."""
    num_shards: int = field(default=1, metadata={"type": positive_int})
    """Split the episodes into this many shards by seed range (1 = a single file per split)."""
    save_interval: int = field(default=10000, metadata={"type": positive_int})
    """Save atomically every this many new episodes."""
    log_interval: int = field(default=100, metadata={"type": non_negative_int})
    """Print a progress line every this many episodes (0 = never)."""
    resume: bool = False
    """Require an existing partial file to continue (re-running continues one anyway)."""
    overwrite: bool = False
    """Replace an existing file generated with different settings."""
    print_episodes: bool = field(default=False, metadata={"name": "--print"})
    """Print every episode as thought segments with their actions."""
    progress: bool = field(default=True, metadata={"flag": False})
    """Show a tqdm bar (`--no-progress` turns it off)."""


@dataclass
class SplitSummary:
    """What one split of a run produced."""

    path: Path
    episodes: int
    lengths: list[int]
    families: Counter
    redrawn: int
    file_bytes: int
    seconds: float
    generated: int = 0

    def lines(self) -> list[str]:
        lengths = np.asarray(self.lengths, dtype=float)
        mean, std = (lengths.mean(), lengths.std()) if len(lengths) else (0.0, 0.0)
        rate = self.generated / self.seconds if self.seconds > 0 else 0.0
        total = sum(self.families.values()) or 1
        families = ", ".join(f"{name} {count} ({100 * count / total:.1f}%)"
                             for name, count in self.families.most_common())
        return [
            f"{self.path}: {self.episodes} episodes, length {mean:.1f} ± {std:.1f}, "
            f"{self.redrawn} seeds redrawn, {self.generated} generated in {self.seconds:.1f}s "
            f"({rate:.1f} episodes/s)",
            f"  file {self.file_bytes / 1e6:.2f} MB, "
            f"{self.file_bytes / max(self.episodes, 1):.0f} bytes/episode",
            f"  thought segments by family: {families}",
        ]


def shard_range(total: int, shard: int, num_shards: int) -> range:
    """Episode indices of one shard: contiguous, sizes differing by at most one."""
    return range(total * shard // num_shards, total * (shard + 1) // num_shards)


def shard_path(path: Path, shard: int, num_shards: int) -> Path:
    """`x/name.pkl` -> `x/name.shards/shard-0003-of-0010.pkl`."""
    directory = path.with_name(path.stem + ".shards") if path.suffix == ".pkl" \
        else path.with_name(path.name + ".shards")
    return directory / f"shard-{shard:04d}-of-{num_shards:04d}.pkl"


def thought_segments(episode: Episode | PackedEpisode) -> list[tuple[int, int, str, list[int]]]:
    """Consecutive steps sharing a thought: (first step, last step, thought, actions)."""
    segments, start = [], 0
    for step in range(1, len(episode.thoughts) + 1):
        if step == len(episode.thoughts) or episode.thoughts[step] != episode.thoughts[start]:
            segments.append((start, step - 1, episode.thoughts[start],
                             [int(a) for a in episode.actions[start:step]]))
            start = step
    return segments


def format_episode(episode: Episode | PackedEpisode) -> str:
    """An episode as thought segments, e.g. `t=3-9: Thought "open blue door", Action [...]`."""
    lines = [f'Mission "{episode.mission}" (seed {episode.seed}, {len(episode)} steps)']
    for first, last, thought, actions in thought_segments(episode):
        names = ", ".join(ACTION_NAMES[a] for a in actions)
        lines.append(f't={first}-{last}: Thought "{thought}", Action [{names}]')
    return "\n".join(lines)


def _produce(task: tuple) -> tuple[int, PackedEpisode, list[Failure]]:
    """Worker: the episode at one index, redrawing seeds until the bot succeeds."""
    config, index, valid = task
    failures = []
    for attempt in range(MAX_ATTEMPTS):
        seed = demo_seed(config.seed, index, attempt, valid)
        result = attempt_episode(config.env, seed, config.noise_rate, config.filter_steps,
                                 raise_bot_failure=config.crash_on_exception,
                                 slip_rate=config.slip_rate)
        if isinstance(result, Episode):
            return index, PackedEpisode.pack(result), failures
        failures.append(result)
    raise UserError(f"{config.env}: the bot failed {MAX_ATTEMPTS} seeds in a row for episode "
                    f"{index} (last: {failures[-1].reason}); is the level solvable by the bot?")


def _results(config: GenerationConfig, indices: range, valid: bool,
             workers: int) -> Iterator[tuple[int, PackedEpisode, list[Failure]]]:
    """Episodes in index order, computed by `workers` processes."""
    tasks = ((config, index, valid) for index in indices)
    if workers <= 1:
        yield from map(_produce, tasks)
        return
    context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    with context.Pool(workers) as pool:
        yield from pool.imap(_produce, tasks, chunksize=1)


def _existing(path: Path, meta: dict, indices: range, run: RunConfig,
              valid: bool) -> tuple[list, list, bool]:
    """Episodes and failures already in a compatible file at `path` (for resuming), and
    whether the file must be rewritten even if nothing new is generated."""
    if path.is_dir():
        raise UserError(f"{path} is a directory, not a demonstration file; choose another "
                        "--demos name")
    if not path.exists():
        if run.resume:
            raise UserError(f"--resume: nothing to resume at {path}")
        return [], [], True
    try:
        content = read_demo_file(path)
    except UserError as error:
        if run.overwrite:
            return [], [], True
        raise UserError(f"{path} exists and is not a demonstration file this command can "
                        f"continue ({error}); choose another --demos name, or pass "
                        "--overwrite to replace it") from error
    saved = content.meta
    compared = [key for key in {**meta, **OPTIONAL_SETTINGS} if key != "run_id"]
    if (any(recorded_setting(saved, key) != recorded_setting(meta, key) for key in compared)
            or saved.get("first_index") != indices.start):
        if run.overwrite:
            return [], [], True
        raise UserError(f"{path} exists with other settings ({saved.get('env')}, seed "
                        f"{saved.get('seed')}, noise {saved.get('noise_rate')}, ...); choose "
                        "another --demos name, or pass --overwrite to replace it")
    if len(content.episodes) > len(indices) and not run.overwrite:
        flag = "--valid-episodes" if valid else "--episodes"
        raise UserError(f"{path} holds {len(content.episodes)} episodes, more than the "
                        f"{len(indices)} asked for; pass {flag} {len(content.episodes)} "
                        f"to keep them, or --overwrite to cut the file to {len(indices)}")
    episodes = [_canonical(episode) for episode in content.episodes[:len(indices)]]
    rewrite = (saved.get("run_id") != meta["run_id"] or len(content.episodes) > len(indices)
               or saved.get("episodes") != len(indices))
    return episodes, [Failure(*failure) for failure in saved.get("redrawn", [])], rewrite


def _canonical(episode: PackedEpisode) -> PackedEpisode:
    """Intern the strings, so equal strings are one object and pickles are byte-identical
    however the episodes were obtained (generated now, or read back when resuming)."""
    episode.mission = sys.intern(episode.mission)
    episode.thoughts = [sys.intern(thought) for thought in episode.thoughts]
    return episode


def _save(path: Path, episodes: list, failures: list, meta: dict, indices: range) -> None:
    failures = [(int(seed), sys.intern(reason)) for seed, reason in failures]
    save_demos(path, episodes, {**meta, "first_index": indices.start, "episodes": len(indices),
                                "complete": len(episodes) == len(indices),
                                "redrawn": failures})


def generate_split(config: GenerationConfig, run: RunConfig, valid: bool,
                   write: Callable[[str], None] = print) -> SplitSummary:
    """Generate (or finish) one split (training or validation) of one shard."""
    total = config.valid_episodes if valid else config.episodes
    indices = shard_range(total, run.shard, run.num_shards)
    path = valid_path(run.demos_path) if valid else Path(run.demos_path)
    if run.num_shards > 1:
        path = shard_path(path, run.shard, run.num_shards)
    ensure_writable_dir(path.parent)
    meta = config.meta(valid)
    episodes, failures, rewrite = _existing(path, meta, indices, run, valid)
    if episodes:
        logger.info("%s: continuing after %d saved episodes", path, len(episodes))
    todo = indices[len(episodes):]
    started = time.perf_counter()
    bar = tqdm(total=len(indices), initial=len(episodes), unit="ep", disable=not run.progress,
               desc=f"{'valid' if valid else 'train'} {config.env}", dynamic_ncols=True)
    unsaved = 0
    try:
        for index, episode, new_failures in _results(config, todo, valid, run.workers):
            episodes.append(_canonical(episode))
            for failure in new_failures:
                failures.append(failure)
                if failure.reason.startswith("the bot cannot"):
                    logger.warning("seed %d: %s; redrawn", failure.seed, failure.reason)
            unsaved += 1
            bar.update(1)
            if run.print_episodes:
                bar.write(format_episode(episode))
            if run.log_interval and len(episodes) % run.log_interval == 0:
                bar.write(f"{len(episodes)}/{len(indices)} episodes, "
                          f"mean length {np.mean([len(e) for e in episodes]):.1f}")
            if unsaved >= run.save_interval:
                _save(path, episodes, failures, meta, indices)
                unsaved = 0
    finally:
        bar.close()
        if unsaved or rewrite or not path.exists():
            _save(path, episodes, failures, meta, indices)
    families = Counter(thought_family(thought) for episode in episodes
                       for _, _, thought, _ in thought_segments(episode))
    return SplitSummary(path, len(episodes), [len(e) for e in episodes], families, len(failures),
                        path.stat().st_size, time.perf_counter() - started, len(todo))


def generate_demos(config: GenerationConfig, run: RunConfig) -> list[SplitSummary]:
    """Generate the training split, then the validation split, of one shard."""
    check_level(config.env)
    if not 0 <= run.shard < run.num_shards:
        raise UserError(f"--shard must be in [0, {run.num_shards}), got {run.shard}")
    if max(config.episodes, config.valid_episodes) >= VALID_DEMO_OFFSET:
        raise UserError(f"at most {VALID_DEMO_OFFSET - 1} episodes per split (seed ranges)")
    target = Path(run.demos_path)
    if run.num_shards > 1:
        target = shard_path(target, run.shard, run.num_shards)
    with writer_lock(target, "dataset"):
        summaries = [generate_split(config, run, valid=False)]
        if config.valid_episodes > 0:
            summaries.append(generate_split(config, run, valid=True))
    return summaries


_SETTINGS = ("env", "seed", "noise_rate", "filter_steps", "split", "seed_scheme", "minigrid",
             "run_id")


def merge_shards(demos_path: Path, num_shards: int, valid: bool = False) -> Path:
    """Join complete shard files into the single file a one-process run would write."""
    with writer_lock(Path(demos_path), "dataset"):
        return _merge_shards(demos_path, num_shards, valid)


def _merge_shards(demos_path: Path, num_shards: int, valid: bool) -> Path:
    path = valid_path(demos_path) if valid else Path(demos_path)
    missing = [str(shard_path(path, shard, num_shards)) for shard in range(num_shards)
               if not shard_path(path, shard, num_shards).exists()]
    if missing:
        raise UserError(f"missing shard files: {', '.join(missing)}")
    parts = [read_demo_file(shard_path(path, shard, num_shards)) for shard in range(num_shards)]
    first = parts[0].meta
    episodes, failures = [], []
    for shard, part in enumerate(parts):
        meta = part.meta
        if not meta.get("complete"):
            raise UserError(f"shard {shard} is incomplete ({len(part.episodes)} of "
                            f"{meta.get('episodes')} episodes); finish it first")
        mismatch = {key for key in (*_SETTINGS, *OPTIONAL_SETTINGS)
                    if recorded_setting(meta, key) != recorded_setting(first, key)}
        if mismatch:
            raise UserError(f"shard {shard} was generated with other settings: {sorted(mismatch)}")
        episodes.extend(_canonical(episode) for episode in part.episodes)
        failures.extend(Failure(*failure) for failure in meta.get("redrawn", []))
    meta = {key: first.get(key) for key in _SETTINGS}
    meta.update({key: first[key] for key in OPTIONAL_SETTINGS if key in first})
    _save(path, episodes, failures, meta, range(0, len(episodes)))
    return path
