"""Checkpoints: weights + the constructor configuration + the frozen vocabulary.

A checkpoint loads in a fresh process with nothing but this package: the agent is rebuilt
from its :class:`~babyai.agent.model.ModelConfig` and its weights loaded strictly, so a file of
another architecture is a clear error instead of a half-loaded model.
"""
from __future__ import annotations

import dataclasses
import os
import pickle
from pathlib import Path
from typing import Any, NamedTuple

import torch

from babyai.common.errors import UserError
from babyai.agent.model import Agent, ModelConfig, build_agent
from babyai.common.storage import atomic_write, checkpoint_path
from babyai.data.vocab import Vocabulary

FORMAT_NAME = "thought-cloning-checkpoint"
FORMAT_VERSION = 1


class Checkpoint(NamedTuple):
    agent: Agent
    vocab: Vocabulary
    extra: dict


def save_checkpoint(path: str | os.PathLike, agent: Agent, vocab: Vocabulary,
                    extra: dict | None = None) -> None:
    """Save atomically; `extra` holds anything else (optimizer state, epoch, metrics...)."""
    if len(vocab) != agent.config.vocab_size:
        raise ValueError(f"vocabulary has {len(vocab)} words, agent expects {agent.config.vocab_size}")
    payload = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "config": dataclasses.asdict(agent.config),
        "vocab": vocab.to_list(),
        "state_dict": {k: v.detach().cpu() for k, v in agent.state_dict().items()},
        "extra": extra or {},
    }
    atomic_write(Path(path), lambda handle: torch.save(payload, handle))


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The raw checkpoint dictionary, with clear errors for missing or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        # weights_only: tensors and plain containers only, so a crafted file cannot run code
        # (our optimizer, sampler and counter state are plain containers too).
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = next((line for line in lines if "WeightsUnpickler error" in line
                       or "GLOBAL" in line), lines[0] if lines else "")
        reason = reason.replace("WeightsUnpickler error: ", "").split(". Please use")[0]
        raise UserError(f"refused checkpoint {path}: it holds more than tensors and plain "
                        f"data ({reason[:200]}); see 'Safety of files' in the README") from error
    except Exception as error:  # any failure to deserialize means the file is unusable
        raise UserError(f"cannot read checkpoint {path}: corrupt or not a checkpoint "
                        f"({type(error).__name__}: {error})") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise UserError(f"{path} is not a Thought Cloning checkpoint")
    if payload.get("version") != FORMAT_VERSION:
        raise UserError(f"{path}: checkpoint version {payload.get('version')} is not supported "
                        f"(this code reads version {FORMAT_VERSION})")
    _check_payload(payload, path)
    return payload


def _check_payload(payload: dict, path: Path) -> None:
    """The fields every reader relies on, with the types they need."""
    expected = {"config": dict, "vocab": list, "state_dict": dict}
    for key, kind in expected.items():
        if not isinstance(payload.get(key), kind):
            raise UserError(f"{path}: checkpoint has no valid {key!r} ({kind.__name__} "
                            f"expected); it was not written by this package")
    if not all(isinstance(word, str) for word in payload["vocab"]) or \
            len(set(payload["vocab"])) != len(payload["vocab"]):
        raise UserError(f"{path}: checkpoint vocabulary is not a list of distinct words")
    if not all(isinstance(key, str) and isinstance(value, torch.Tensor)
               for key, value in payload["state_dict"].items()):
        raise UserError(f"{path}: checkpoint 'state_dict' must map names to tensors")
    if not isinstance(payload.get("extra", {}), dict):
        raise UserError(f"{path}: checkpoint 'extra' must be a dict")


def load_checkpoint(path: str | os.PathLike, device: torch.device | str = "cpu") -> Checkpoint:
    """Rebuild the agent (in eval mode) and its vocabulary from a checkpoint file."""
    payload = read_checkpoint(path)
    known = {field.name for field in dataclasses.fields(ModelConfig)}
    unknown = set(payload["config"]) - known
    if unknown:
        raise UserError(f"{path}: checkpoint of an unknown architecture (fields {sorted(unknown)})")
    try:
        config = ModelConfig(**payload["config"])
        vocab = Vocabulary.from_list(payload["vocab"])
        agent = build_agent(config)
    except (TypeError, ValueError) as error:
        raise UserError(f"{path}: checkpoint config does not build an agent ({error})") from error
    try:
        agent.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0]
        raise UserError(f"{path}: weights do not match the architecture in its config "
                        f"({first_line})") from error
    return Checkpoint(agent.to(device).eval(), vocab, payload.get("extra", {}))


def check_compatible(payload: dict[str, Any], config: ModelConfig, path: str | os.PathLike) -> None:
    """Raise a clear error if a checkpoint was made with another architecture than `config`.

    A field missing from an older checkpoint has its default, as :func:`load_checkpoint`
    builds it (fields are added with the old behaviour as their default)."""
    defaults = {f.name: f.default for f in dataclasses.fields(ModelConfig)
                if f.default is not dataclasses.MISSING}
    saved = {**defaults, **payload["config"]}
    current = dataclasses.asdict(config)
    different = {key: (saved.get(key), value) for key, value in current.items()
                 if key not in ("dropout",) and saved.get(key) != value}
    if different:
        details = ", ".join(f"{key}: checkpoint {old!r} vs requested {new!r}"
                            for key, (old, new) in sorted(different.items()))
        raise UserError(f"{path} was trained with another architecture ({details})")


class LoadedAgent(NamedTuple):
    """An agent loaded for evaluation, with its vocabulary, extras and checkpoint path."""

    agent: Agent
    vocab: Vocabulary
    extra: dict
    path: Path


def load_agent(name_or_path: str | Path, storage_root: Path, device: Any = "cpu") -> LoadedAgent:
    """A model name (under `storage_root/models`) or a `.pt` path -> agent in eval mode."""
    path = checkpoint_path(name_or_path, Path(storage_root))
    checkpoint = load_checkpoint(path, device=device)
    checkpoint.agent.eval()
    return LoadedAgent(checkpoint.agent, checkpoint.vocab, dict(checkpoint.extra or {}), path)
