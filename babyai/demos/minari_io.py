"""Thought demonstrations as Minari datasets (the offline-RL exchange format), both ways.

Export replays every episode from its seed in the level (so the dataset gets the final
observation, the rewards and the terminations that a demonstration file does not store,
and an episode that does not replay exactly is an error), then writes a Minari dataset
(HDF5, no JPEG re-encoding of observation codes) whose episode `i` has:

* `observations`: `{"image": [T+1, 7, 7, 3] uint8, "direction": [T+1], "mission": T+1
  strings}` (Minari's convention: one more observation than actions);
* `actions`: [T]; `rewards`, `terminations`, `truncations`: [T] from the replay;
* `infos["thought"]`: T+1 strings, entry t being the thought in force when action t was
  taken (the last one is empty: no action follows the final observation);
* the episode's seed as Minari's episode seed.

Import reads a Minari dataset of a BabyAI level (ours, or anyone's with that observation
layout) back into our episodes: thoughts from `infos["thought"]` when present (for TC),
empty thoughts otherwise (BC only). Nothing is ever downloaded: a dataset id is looked up
under the given root only, or a path is read as it is.

Minari is an optional dependency: `pip install -e ".[minari]"`.
"""
from __future__ import annotations

import contextlib
import os
import string
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from babyai.common.errors import UserError
from babyai.demos.episode import Episode, PackedEpisode
from babyai.env.envs import make_env

THOUGHT_INFO = "thought"
MAX_MISSION = 512
"""Longest mission the exported Text space admits (BossLevel missions stay far below)."""


def _minari() -> Any:
    try:
        import minari
    except ImportError as error:
        raise UserError("Minari is not installed: pip install -e \".[minari]\"") from error
    return minari


@contextlib.contextmanager
def minari_root(root: Path) -> Iterator[Path]:
    """Point Minari's local dataset directory at `root` for the block (never a download)."""
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        yield root
    finally:
        if previous is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous


def _spaces() -> tuple[Any, Any]:
    import gymnasium as gym
    observation = gym.spaces.Dict({
        "direction": gym.spaces.Discrete(4),
        "image": gym.spaces.Box(0, 255, (7, 7, 3), np.uint8),
        "mission": gym.spaces.Text(MAX_MISSION, charset=string.printable)})
    return observation, gym.spaces.Discrete(7)


def replay(env: Any, episode: Episode, index: int) -> dict:
    """Play `episode`'s actions from its seed; the Minari fields of the episode."""
    observation, _ = env.reset(seed=episode.seed)
    images, directions = [observation["image"]], [observation["direction"]]
    rewards, terminations, truncations = [], [], []
    for step, action in enumerate(episode.actions):
        if not np.array_equal(observation["image"], episode.images[step]):
            raise UserError(f"episode {index} (seed {episode.seed}) does not replay in "
                            f"{env.spec.id}: the observation differs at step {step} (another "
                            "level, or another minigrid version?)")
        observation, reward, terminated, truncated, _ = env.step(int(action))
        images.append(observation["image"])
        directions.append(observation["direction"])
        rewards.append(float(reward))
        terminations.append(bool(terminated))
        truncations.append(bool(truncated))
    return {"observations": {"image": np.stack(images).astype(np.uint8),
                             "direction": np.asarray(directions, dtype=np.int64),
                             "mission": [episode.mission] * (len(episode) + 1)},
            "actions": np.asarray(episode.actions, dtype=np.int64),
            "rewards": rewards, "terminations": terminations, "truncations": truncations,
            "infos": {THOUGHT_INFO: list(episode.thoughts) + [""]}}


def export_minari(episodes: Sequence[PackedEpisode | Episode], env_name: str, dataset_id: str,
                  root: Path, description: str = "") -> Path:
    """Write `episodes` of level `env_name` as the Minari dataset `dataset_id` under `root`;
    returns the dataset's directory."""
    minari = _minari()
    from minari.data_collector import EpisodeBuffer

    env = make_env(env_name)
    buffers = []
    for index, episode in enumerate(episodes):
        if isinstance(episode, PackedEpisode):
            episode = episode.unpack()
        fields = replay(env, episode, index)
        buffers.append(EpisodeBuffer(id=index, seed=int(episode.seed), **fields))
    observation_space, action_space = _spaces()
    with minari_root(Path(root)), warnings.catch_warnings():
        # Minari recommends an author and a code permalink; a local export has neither.
        warnings.filterwarnings("ignore", category=UserWarning, module="minari")
        try:
            dataset = minari.create_dataset_from_buffers(
                dataset_id, buffers, env=env_name, algorithm_name="ThinkingBot (thought demos)",
                observation_space=observation_space, action_space=action_space,
                description=description or f"Thought-annotated {env_name} demonstrations; "
                "infos['thought'][t] is the thought in force at action t.",
                data_format="hdf5", jpeg_encoding=False)
        except ValueError as error:  # e.g. a malformed id or an existing dataset
            raise UserError(f"cannot create Minari dataset {dataset_id!r}: {error}") from error
        del dataset
        return Path(minari.storage.get_dataset_path(dataset_id))


@dataclass
class ImportedDataset:
    """Episodes read from a Minari dataset and what they carry."""

    episodes: list[Episode]
    env: str | None
    has_thoughts: bool


def _strings(values: Any) -> list[str]:
    return [value.decode("utf-8") if isinstance(value, bytes) else str(value)
            for value in list(values)]


def _open(source: str, root: Path) -> Any:
    minari = _minari()
    path = Path(source)
    data = path / "data" if (path / "data").is_dir() else path
    if data.is_dir():
        return minari.MinariDataset(str(data))
    with minari_root(Path(root)):
        try:
            return minari.load_dataset(source, download=False)
        except (FileNotFoundError, ValueError) as error:
            raise UserError(f"no Minari dataset {source!r} under {root} (nothing is "
                            "downloaded; give a dataset directory or an id stored there)"
                            ) from error


def import_minari(source: str, root: Path) -> ImportedDataset:
    """Read a Minari BabyAI dataset (a path, or an id under `root`) into episodes."""
    dataset = _open(source, root)
    spec = getattr(dataset, "spec", None)
    env_name = getattr(spec, "env_spec", None)
    env_name = getattr(env_name, "id", None)
    seeds = {int(meta["id"]): meta.get("seed")
             for meta in dataset.storage.get_episode_metadata(dataset.episode_indices)}
    episodes, with_thoughts = [], []
    for index, data in enumerate(dataset.iterate_episodes()):
        observations = data.observations
        if not isinstance(observations, dict) or not {"image", "direction", "mission"} <= set(
                observations):
            raise UserError(f"{source}: episode {index} has no BabyAI observations (a dict "
                            "with 'image', 'direction' and 'mission')")
        length = len(data.actions)
        infos = data.infos or {}
        thoughts = _strings(infos[THOUGHT_INFO])[:length] if THOUGHT_INFO in infos else None
        with_thoughts.append(thoughts is not None)
        seed = seeds.get(int(data.id))
        try:
            episodes.append(Episode(
                _strings(observations["mission"])[0],
                np.asarray(observations["image"])[:length],
                np.asarray(observations["direction"])[:length],
                np.asarray(data.actions).reshape(-1),
                thoughts if thoughts is not None else [""] * length,
                int(seed) if seed is not None else int(data.id)))
        except (ValueError, TypeError, IndexError) as error:
            raise UserError(f"{source}: episode {index}: {error}") from error
    if any(with_thoughts) and not all(with_thoughts):
        raise UserError(f"{source}: some episodes carry thoughts and others do not")
    return ImportedDataset(episodes, env_name, bool(with_thoughts) and all(with_thoughts))
