"""Speed of demo generation against minigrid's raw BabyAIBot on the same seeds.

Measures episodes/s of (a) minigrid's `BabyAIBot` stepping seeds 0..N-1 with no thoughts
and nothing stored, (b) our generator (thoughts, noise, blosc packing and the saved file)
on the same seeds in one process, (c) the same with `--workers` processes. Each figure is
the median of `--repeats` runs; the raw/ours ratio is also given in CPU time, which a
machine loaded by other jobs does not distort as much. Targets: (b)/(a) >= 0.9 and (c)/(b) >= 1.7 on 2 free cores.

    python scripts/bench_demos.py --episodes 200 --repeats 3
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

from minigrid.utils.baby_ai_bot import BabyAIBot

from babyai.common.flags import Parser
from babyai.common.cli import non_negative_int, positive_int, probability, run
from babyai.env.envs import make_env
from babyai.demos.generate import GenerationConfig, RunConfig, generate_demos


def raw_bot_seconds(level: str, seeds: range) -> tuple[float, float]:
    """Wall and CPU time of minigrid's bot playing every seed (no thoughts, nothing stored)."""
    env = make_env(level)
    started, cpu = time.perf_counter(), time.process_time()
    for seed in seeds:
        env.reset(seed=seed)
        bot = BabyAIBot(env)
        while True:
            _, _, terminated, truncated, _ = env.step(bot.replan())
            if terminated or truncated:
                break
    return time.perf_counter() - started, time.process_time() - cpu


def generator_seconds(level: str, seeds: range, noise_rate: float,
                      workers: int) -> tuple[float, float]:
    """Wall and CPU time (of this process) of our generator writing the seeds to a file."""
    config = GenerationConfig(env=level, episodes=len(seeds), valid_episodes=0,
                              seed=seeds.start, noise_rate=noise_rate)
    with tempfile.TemporaryDirectory() as directory:
        run_config = RunConfig(demos_path=Path(directory) / "bench.pkl", workers=workers,
                               progress=False, log_interval=0)
        started, cpu = time.perf_counter(), time.process_time()
        generate_demos(config, run_config)
        return time.perf_counter() - started, time.process_time() - cpu


def main(argv: Sequence[str] | None = None) -> dict:
    parser = Parser(description=__doc__)
    parser.add_argument("--env", default="BabyAI-BossLevel-v0")
    parser.add_argument("--episodes", type=positive_int, default=200)
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--noise-rate", type=probability, default=0.01)
    parser.add_argument("--workers", type=positive_int, default=2)
    parser.add_argument("--repeats", type=positive_int, default=3)
    args = parser.parse_args(argv)
    seeds = range(args.seed, args.seed + args.episodes)
    times: dict[str, list[float]] = {"raw": [], "ours": [], "workers": []}
    cpu: dict[str, list[float]] = {"raw": [], "ours": []}
    for repeat in range(args.repeats):  # interleaved, so a load spike hits all three alike
        for name, workers in (("raw", 0), ("ours", 1), ("workers", args.workers)):
            wall, used = (raw_bot_seconds(args.env, seeds) if name == "raw" else
                          generator_seconds(args.env, seeds, args.noise_rate, workers))
            times[name].append(wall)
            if name in cpu:
                cpu[name].append(used)
        print(f"repeat {repeat + 1}: " + ", ".join(
            f"{name} {args.episodes / t[-1]:.1f} ep/s" for name, t in times.items()), flush=True)
    rates = {name: args.episodes / statistics.median(t) for name, t in times.items()}
    cpu_ratio = statistics.median(cpu["raw"]) / statistics.median(cpu["ours"])
    print(f"{args.env}, {args.episodes} seeds, median of {args.repeats}:")
    print(f"  raw minigrid BabyAIBot:                  {rates['raw']:.1f} episodes/s")
    print(f"  ours, thoughts + noise {args.noise_rate}, 1 process: {rates['ours']:.1f} episodes/s "
          f"(ratio to raw {rates['ours'] / rates['raw']:.2f}, target >= 0.9)")
    print(f"  same ratio in CPU time (robust to a loaded machine): {cpu_ratio:.2f}")
    print(f"  ours, {args.workers} workers:                        {rates['workers']:.1f} "
          f"episodes/s (speed-up {rates['workers'] / rates['ours']:.2f}x, target >= 1.7x)")
    return rates


def cli() -> int:
    return run(main)


if __name__ == "__main__":
    sys.exit(cli())
