"""Pictures of what the agent thinks: episodes rendered to GIF (or MP4) with captions.

Every source of episodes - a trained agent, the thinking bot, a demonstration file, or the
failed episodes of an evaluation's JSONL - is reduced to a :class:`Trace`: the level, the
seed, the actions and the thoughts. A trace is then *re-simulated* from its seed and
actions (the levels are deterministic), so one renderer serves them all and a stored
episode needs no stored pictures.

A rendered episode of T actions has T + 1 frames, one per state: frame t shows the full
grid (the agent's field of view highlighted) before action t, captioned with the mission,
the thought in force, the bot's thought for the same state when known, and the action about
to be taken; the last frame shows the final state and the outcome.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from babyai.agent.checkpoint import load_agent
from babyai.agent.rollout import RolloutOptions, run_episodes
from babyai.common.errors import UserError
from babyai.common.storage import atomic_write, atomic_write_path
from babyai.demos.files import load_demos
from babyai.env.bot import play_bot
from babyai.env.envs import ACTION_NAMES, make_env

logger = logging.getLogger(__name__)

PANEL_MIN_WIDTH = 480
"""Frames narrower than this are centred on a wider canvas so captions stay readable."""
TARGET_GRID_PIXELS = 480
"""With an automatic tile size, the grid is drawn about this wide."""
FONT_SIZE = 14
FINAL_FRAME_HOLD = 4
"""The outcome frame stays this many frame durations, so a looping GIF can be read."""
BACKGROUND = (24, 24, 24)
COLOURS = {"header": (160, 160, 160), "mission": (255, 255, 255), "thought": (255, 214, 102),
           "bot": (120, 200, 255), "action": (140, 230, 140), "success": (120, 230, 120),
           "failure": (255, 110, 110)}


@dataclass
class Trace:
    """One episode to render: enough to re-simulate it and caption every step."""

    env_name: str
    seed: int
    actions: list[int]
    thoughts: list[str] = field(default_factory=list)
    """The thought in force at each step (empty for a BC agent); one more than `actions`
    when the episode was halted on a thought before acting."""
    bot_thoughts: list[str] = field(default_factory=list)
    """The bot's thought for the same states, when known."""
    mission: str = ""
    """The expected mission; checked against the re-simulated level when given."""
    label: str = "agent"
    """Who acted: 'bot', 'demo', 'TC agent', 'BC agent'."""
    halt_reason: str | None = None
    """Why the episode was halted before its next action (precrime intervention), if it was."""


@dataclass
class Replay:
    """A re-simulated trace: one RGB frame per state and how it ended."""

    frames: list[np.ndarray]
    mission: str
    reward: float
    done: bool


def default_tile_size(env_name: str) -> int:
    """A tile size that draws the level's grid about TARGET_GRID_PIXELS wide (8-32 px)."""
    env = make_env(env_name)
    width = env.unwrapped.width
    env.close()
    return max(8, min(32, TARGET_GRID_PIXELS // width))


def replay(trace: Trace, tile_size: int | None = None) -> Replay:
    """Re-simulate `trace` from its seed; frame 0 is the initial state, frame t+1 follows action t."""
    tile_size = tile_size or default_tile_size(trace.env_name)
    env = make_env(trace.env_name, render_mode="rgb_array", tile_size=tile_size)
    obs, _ = env.reset(seed=int(trace.seed))
    if trace.mission and obs["mission"] != trace.mission:
        raise UserError(
            f"seed {trace.seed} of {trace.env_name} gives the mission {obs['mission']!r}, but the "
            f"episode says {trace.mission!r}: wrong --env, or made with another minigrid version")
    frames = [env.render()]
    reward, done = 0.0, False
    for step, action in enumerate(trace.actions):
        if done:
            raise UserError(f"seed {trace.seed}: the episode ended after {step} of "
                            f"{len(trace.actions)} actions; the stored actions do not match "
                            "this level")
        _, reward, terminated, truncated, _ = env.step(int(action))
        done = terminated or truncated
        frames.append(env.render())
    env.close()
    return Replay(frames, obs["mission"], float(reward), done)


def caption_lines(trace: Trace, replayed: Replay, step: int) -> list[tuple[str, str]]:
    """The caption of frame `step` as (colour key, text) lines; a pure function, tested."""
    total = len(trace.actions)
    lines = [("header", f"{trace.label} | {trace.env_name} | seed {trace.seed} | "
                        f"step {step}/{total}"),
             ("mission", f"mission: {replayed.mission}")]
    if step < len(trace.thoughts):
        lines.append(("thought", f"thought: {trace.thoughts[step]}"))
    if step < len(trace.bot_thoughts):
        lines.append(("bot", f"bot thought: {trace.bot_thoughts[step]}"))
    if step < total:
        lines.append(("action", f"action: {ACTION_NAMES[int(trace.actions[step])]}"))
    elif trace.halt_reason is not None:
        lines.append(("failure", f"HALTED before acting: {trace.halt_reason}"))
    elif replayed.reward > 0:
        lines.append(("success", f"success (reward {replayed.reward:.2f})"))
    elif replayed.done:
        lines.append(("failure", "failure: out of time or wrong action"))
    else:
        lines.append(("failure", "stopped (episode not finished)"))
    return lines


def _font(size: int = FONT_SIZE) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def _wrap(text: str, font: ImageFont.ImageFont, width: int) -> list[str]:
    """Greedy word wrap to `width` pixels (a long word stays whole on its own line)."""
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    lines, current = [], ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if current and draw.textlength(candidate, font=font) > width:
            lines.append(current)
            current = "  " + word
        else:
            current = candidate
    return lines + [current] if current else lines


def render_trace(trace: Trace, tile_size: int | None = None) -> list[Image.Image]:
    """The captioned frames of one trace (T + 1 of them for T actions)."""
    replayed = replay(trace, tile_size)
    font = _font()
    height, width = replayed.frames[0].shape[:2]
    canvas_width = max(width, PANEL_MIN_WIDTH)
    margin = 6
    line_height = FONT_SIZE + 4
    captions = []
    for step in range(len(replayed.frames)):
        wrapped = [(key, piece) for key, text in caption_lines(trace, replayed, step)
                   for piece in _wrap(text, font, canvas_width - 2 * margin)]
        captions.append(wrapped)
    panel = 2 * margin + line_height * max(len(lines) for lines in captions)
    images = []
    for frame, lines in zip(replayed.frames, captions):
        image = Image.new("RGB", (canvas_width, height + panel), BACKGROUND)
        image.paste(Image.fromarray(frame), ((canvas_width - width) // 2, 0))
        draw = ImageDraw.Draw(image)
        for row, (key, text) in enumerate(lines):
            draw.text((margin, height + margin + row * line_height), text,
                      fill=COLOURS[key], font=font)
        images.append(image)
    return images


def save_animation(images: Sequence[Image.Image], path: Path, fps: float = 4.0) -> Path:
    """Write frames as an animated GIF (Pillow) or, for `.mp4`, a video (imageio + ffmpeg)."""
    path = Path(path)
    if not images:
        raise ValueError("no frames to save")
    suffix = path.suffix.lower()
    if suffix == ".gif":
        step = max(20, int(round(1000 / fps)))
        durations = [step] * (len(images) - 1) + [step * FINAL_FRAME_HOLD]
        # Pillow merges identical consecutive GIF frames; every caption carries its step
        # number, so frames differ and the file holds exactly one frame per image.
        atomic_write(path, lambda handle: images[0].save(
            handle, format="GIF", save_all=True, append_images=list(images[1:]),
            duration=durations, loop=0, optimize=True))
        return path
    if suffix == ".mp4":
        return _save_mp4(images, path, fps)
    raise UserError(f"cannot write {path}: use a .gif or .mp4 file name")


def _save_mp4(images: Sequence[Image.Image], path: Path, fps: float) -> Path:
    try:
        import imageio.v3 as iio
        import imageio_ffmpeg  # noqa: F401  (imageio's ffmpeg plugin needs it)
    except ImportError as error:
        raise UserError("MP4 needs the imageio-ffmpeg package (pip install imageio-ffmpeg); "
                        "use a .gif file name instead") from error
    # Even sizes keep H.264 encoders happy.
    width = images[0].width - images[0].width % 2
    height = images[0].height - images[0].height % 2
    frames = np.stack([np.asarray(image)[:height, :width] for image in images])
    atomic_write_path(path, lambda tmp: iio.imwrite(tmp, frames, fps=fps, extension=".mp4"),
                      suffix=".mp4")
    return path


# --------------------------------------------------------------------------- sources

def bot_traces(env_name: str, seeds: Iterable[int]) -> list[Trace]:
    """The thinking bot, noise-free, on each seed."""
    traces = []
    for seed in seeds:
        env = make_env(env_name)
        played = play_bot(env, int(seed))
        env.close()
        traces.append(Trace(env_name, int(seed), played.actions, played.thoughts,
                            mission=played.mission, label="bot",
                            halt_reason=None if played.failure is None else str(played.failure)))
    return traces


def demo_traces(source: Any, env_name: str, episodes: int,
                seed: int | None = None) -> list[Trace]:
    """The first `episodes` demonstrations of a demo file (or those with `seed`)."""
    demos = load_demos(source)
    if seed is not None:
        demos = [demo for demo in demos if int(demo.seed) == seed]
        if not demos:
            raise UserError(f"no demonstration with seed {seed} in {source}")
    return [Trace(env_name, int(demo.seed), [int(a) for a in demo.actions],
                  thoughts=list(demo.thoughts), mission=demo.mission, label="demo")
            for demo in demos[:episodes]]


def _trace_from_record(record: Any, env_name: str, label: str) -> Trace:
    """An evaluation record (an EpisodeRecord or its JSON dict) -> Trace."""
    get = record.get if isinstance(record, dict) else (lambda key, d=None: getattr(record, key, d))
    if get("actions") is None:
        raise UserError(f"episode record of seed {get('seed')} has no actions to replay")
    halt_reason = None
    if get("halted", False):
        halt_reason = f"thought matched {get('halt_reason') or 'an unsafe pattern'}"
    return Trace(get("env_name") or env_name, int(get("seed")), [int(a) for a in get("actions")],
                 thoughts=list(get("thoughts") or []), bot_thoughts=list(get("bot_thoughts") or []),
                 mission=get("mission") or "", label=label, halt_reason=halt_reason)


def model_traces(model: str | Path, storage_root: Path, env_name: str, seeds: Sequence[int], *,
                 argmax: bool = False, bot_thoughts: bool = False,
                 device: Any = "cpu") -> list[Trace]:
    """A trained agent (TC or BC) on each seed, via the batched evaluation core."""
    loaded = load_agent(model, storage_root, device=device)
    label = "TC agent" if loaded.agent.config.use_thoughts else "BC agent"
    records = run_episodes(loaded.agent, loaded.vocab, env_name, list(seeds),
                           RolloutOptions(argmax=argmax, bot_thoughts=bot_thoughts), device=device)
    return [_trace_from_record(record, env_name, label) for record in records]


def jsonl_traces(path: str | Path, env_name: str, worst: int) -> list[Trace]:
    """The first `worst` failed episodes of an evaluation's per-episode JSONL, in file order."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror or error}") from error
    failed = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise UserError(f"{path}:{number}: not JSON ({error.msg})") from error
        if not isinstance(record, dict) or "seed" not in record or "success" not in record:
            raise UserError(f"{path}:{number}: not an episode record (needs seed and success)")
        if not record["success"]:
            failed.append(record)
    if not failed:
        logger.info("%s lists no failed episode", path)
    return [_trace_from_record(record, env_name, "failed episode") for record in failed[:worst]]


# --------------------------------------------------------------------------- entry point

@dataclass(frozen=True)
class VisualizeConfig:
    """What to render and where."""

    source: str
    """'bot', 'model', 'demos' or 'jsonl'."""
    env: str
    """The BabyAI level id (a JSONL record's own `env_name` wins)."""
    out: Path
    """The output file (.gif or .mp4); with several episodes, `<stem>_<i>_seed<seed><suffix>`."""
    seed: int | None = None
    """First env seed (bot, model), or the one demonstration to show (demos)."""
    episodes: int = 1
    """How many episodes (seeds seed, seed+1, ...; or the first demos)."""
    model: str | None = None
    """Checkpoint name or .pt path (source 'model')."""
    demos: str | None = None
    """Demo file, directory or glob (source 'demos')."""
    jsonl: Path | None = None
    """An evaluation's per-episode JSONL (source 'jsonl')."""
    worst: int = 1
    """How many failed episodes of the JSONL to render."""
    argmax: bool = False
    """Greedy actions for the model instead of sampling."""
    bot_thoughts: bool = False
    """Caption the bot's thought for the agent's states too (model)."""
    fps: float = 4.0
    """Frames per second."""
    tile_size: int | None = None
    """Pixels per grid cell (default: about 480 px for the whole grid)."""
    storage: Path = Path("storage")
    """Storage root for model names."""
    device: str = "cpu"
    """Where the model runs."""


def collect_traces(config: VisualizeConfig) -> list[Trace]:
    """The episodes the config asks for."""
    seed = config.seed if config.seed is not None else 0
    seeds = range(seed, seed + config.episodes)
    if config.source == "bot":
        return bot_traces(config.env, seeds)
    if config.source == "demos":
        return demo_traces(config.demos, config.env, config.episodes, config.seed)
    if config.source == "model":
        return model_traces(config.model, config.storage, config.env, seeds,
                            argmax=config.argmax, bot_thoughts=config.bot_thoughts,
                            device=config.device)
    if config.source == "jsonl":
        return jsonl_traces(config.jsonl, config.env, config.worst)
    raise UserError(f"unknown episode source {config.source!r}")


def output_paths(out: Path, traces: Sequence[Trace]) -> list[Path]:
    """One file per trace: `out` itself for one, numbered siblings for several."""
    out = Path(out)
    if len(traces) == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{i:02d}_seed{trace.seed}{out.suffix}")
            for i, trace in enumerate(traces)]


def visualize(config: VisualizeConfig) -> list[Path]:
    """Render every episode the config asks for; return the files written."""
    if Path(config.out).suffix.lower() not in (".gif", ".mp4"):
        raise UserError(f"--out must end in .gif or .mp4, got {config.out}")
    traces = collect_traces(config)
    written = []
    for trace, path in zip(traces, output_paths(config.out, traces)):
        images = render_trace(trace, config.tile_size)
        save_animation(images, path, config.fps)
        logger.info("wrote %s (%d frames, seed %d)", path, len(images), trace.seed)
        written.append(path)
    return written
