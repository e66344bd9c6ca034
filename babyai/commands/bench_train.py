"""Training speed and memory on BossLevel-like demonstrations.

Prints demonstration steps consumed per second (median of per-batch rates, after one short
warm-up batch) and the peak resident memory of the process, for

    (a) --memory-dim 2048 --instr-dim 256 --batch-size 32 --recurrence 80
    (b) --memory-dim 256  --instr-dim 128 --batch-size 32 --recurrence 20

each with teacher forcing on and off. Every setting runs in its own subprocess so that its
peak memory is its own. The demos are made here, quickly and without the bot: real
BossLevel missions (from environment resets), realistic episode lengths (log-normal around
the ~87 steps of the paper's dataset, clipped to 15-300), random observation codes and
plausible thoughts from babyai.env.thoughts. `--bot` uses babyai.demos.generate instead (slower).
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from babyai.common.flags import Parser
from babyai.common.cli import positive_int, run
from babyai.common.storage import demos_path
from babyai.demos.files import save_demos
from babyai.demos.generate import generate_episode
from babyai.env.envs import make_env
from babyai.env.thoughts import random_thought
from babyai.demos.episode import Episode
from babyai.training.config import TrainConfig
from babyai.training.trainer import Trainer

SETTINGS = {
    "a": dict(memory_dim=2048, instr_dim=256, batch_size=32, recurrence=80),
    "b": dict(memory_dim=256, instr_dim=128, batch_size=32, recurrence=20),
}
ENV = "BabyAI-BossLevel-v0"


def synthetic_episodes(count: int, seed: int) -> list[Episode]:
    """BossLevel missions with random observations, realistic lengths and plausible thoughts."""
    rng = np.random.default_rng(seed)
    env = make_env(ENV)
    episodes = []
    for index in range(count):
        obs, _ = env.reset(seed=seed + index)
        length = int(np.clip(rng.lognormal(np.log(80), 0.5), 15, 300))
        images = np.stack([rng.integers(0, 11, (length, 7, 7)), rng.integers(0, 6, (length, 7, 7)),
                           rng.integers(0, 3, (length, 7, 7))], axis=-1).astype(np.uint8)
        thoughts, current = [], random_thought(rng)
        for _ in range(length):
            if rng.random() < 0.1:
                current = random_thought(rng)
            thoughts.append(current)
        episodes.append(Episode(obs["mission"], images, rng.integers(0, 4, length),
                                rng.integers(0, 7, length), thoughts, seed + index))
    return episodes


def bot_episodes(count: int, seed: int) -> list[Episode]:
    episodes, candidate = [], seed
    while len(episodes) < count:
        episode = generate_episode(ENV, candidate, noise_rate=0.01)
        candidate += 1
        if episode is not None:
            episodes.append(episode)
    return episodes


def measure(setting: str, teacher_forcing: bool, batches: int, threads: int, bot: bool) -> dict:
    """One setting in this process: returns frames/s per batch and the peak RSS."""
    torch.set_num_threads(threads)
    sizes = SETTINGS[setting]
    count = sizes["batch_size"] * batches + 4
    with tempfile.TemporaryDirectory() as root:
        episodes = (bot_episodes if bot else synthetic_episodes)(count, seed=1)
        save_demos(demos_path("bench", Path(root)), episodes, {"env": ENV})
        save_demos(demos_path("bench", Path(root), valid=True), episodes[:2], {"env": ENV})
        del episodes
        trainer = Trainer(TrainConfig(demos="bench", env=ENV, storage=root, model="bench",
                                      val_episodes=0, device="cpu", **sizes))
        data = trainer.train_data
        trainer.agent.train()
        warmup = data.batch(range(4))
        trainer.train_batch(warmup, teacher_forcing, warmup.num_steps)
        rates, steps = [], 0
        for number in range(batches):
            start = 4 + number * sizes["batch_size"]
            batch = data.batch(range(start, start + sizes["batch_size"]))
            began = time.perf_counter()
            trainer.train_batch(batch, teacher_forcing, batch.num_steps)
            rates.append(batch.num_steps / (time.perf_counter() - began))
            steps += batch.num_steps
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"setting": setting, "teacher_forcing": teacher_forcing, "fps": statistics.median(rates),
            "rates": [round(r, 1) for r in rates], "steps": steps, "peak_rss_mb": peak_mb,
            "threads": threads, "source": "bot" if bot else "synthetic"}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(description=__doc__)
    parser.add_argument("--settings", default="a,b", help="comma-separated: a, b")
    parser.add_argument("--batches", type=positive_int, default=2, help="measured batches per setting")
    parser.add_argument("--threads", type=positive_int, default=2, help="torch threads")
    parser.add_argument("--tf", choices=["both", "on", "off"], default="both",
                        help="teacher forcing on, off or both")
    parser.add_argument("--bot", action="store_true", help="generate demos with the bot (slower)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> list[dict]:
    args = build_parser().parse_args(argv)
    modes = {"both": [True, False], "on": [True], "off": [False]}[args.tf]
    if args.child:
        result = measure(args.settings, modes[0], args.batches, args.threads, args.bot)
        print(json.dumps(result))
        return [result]
    results = []
    for setting in args.settings.split(","):
        for teacher_forcing in modes:
            command = [sys.executable, "-m", "babyai.commands.bench_train", "--child", "--settings", setting,
                       "--batches", str(args.batches), "--threads", str(args.threads),
                       "--tf", "on" if teacher_forcing else "off"] + (["--bot"] if args.bot else [])
            output = subprocess.run(command, capture_output=True, text=True)
            if output.returncode != 0:
                raise RuntimeError(f"benchmark of setting {setting} failed:\n{output.stderr[-2000:]}")
            result = json.loads(output.stdout.strip().splitlines()[-1])
            results.append(result)
            sizes = SETTINGS[setting]
            print(f"({setting}) memory {sizes['memory_dim']} instr {sizes['instr_dim']} "
                  f"batch {sizes['batch_size']} recurrence {sizes['recurrence']} "
                  f"teacher forcing {'on ' if teacher_forcing else 'off'}: "
                  f"{result['fps']:.0f} frames/s (per batch {result['rates']}), "
                  f"peak RSS {result['peak_rss_mb'] / 1024:.2f} GB", flush=True)
    return results


def cli() -> int:
    return run(main)


if __name__ == "__main__":
    sys.exit(cli())
