"""Speed of PPO fine-tuning: environment stepping three ways, then collection + update.

    python scripts/bench_rl.py                          # untrained agents at the pipeline's dims
    python scripts/bench_rl.py --tc-model quickstart_tc --bc-model quickstart_bc

1. Stepping --procs MiniBossLevel environments with random actions for --steps steps:
   in this process, in our pipe workers (--workers processes), and in gymnasium's
   AsyncVectorEnv (one process per environment, its design; observations reduced to the
   image, so its figure is an upper bound). Median of --repeats, in steps/s.
2. PPO frames/s (collection + update, the trainer's code and defaults: --procs environments
   in --workers processes, 40 frames per process, 4 epochs, batch 1280, recurrence 20) for
   BC and TC, median over --updates updates after one warm-up, and the projected time for
   1M frames. Checkpoints given with --tc-model/--bc-model are timed as they are (a trained
   TC agent emits short thoughts; an untrained one decodes up to 15 tokens every step).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Sequence

import gymnasium as gym
import numpy as np
import torch

from babyai.agent.checkpoint import load_agent
from babyai.agent.model import ModelConfig, build_agent
from babyai.commands.bench_eval import _vocabulary
from babyai.common import storage
from babyai.common.cli import positive_int, run
from babyai.common.flags import Parser
from babyai.env.envs import check_level, make_env
from babyai.rl.collect import Collector
from babyai.rl.envs import InProcessEnvs, WorkerEnvs, make_episodes
from babyai.rl.ppo import UpdateSettings, ppo_update


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(description=__doc__)
    parser.add_argument("--env", default="BabyAI-MiniBossLevel-v0")
    parser.add_argument("--procs", type=positive_int, default=16)
    parser.add_argument("--workers", type=positive_int, default=2)
    parser.add_argument("--steps", type=positive_int, default=200, help="steps per env stepping run")
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument("--updates", type=positive_int, default=3, help="timed PPO updates per agent")
    parser.add_argument("--tc-model", default=None)
    parser.add_argument("--bc-model", default=None)
    parser.add_argument("--memory-dim", type=positive_int, default=128)
    parser.add_argument("--instr-dim", type=positive_int, default=64)
    parser.add_argument("--image-dim", type=positive_int, default=64)
    parser.add_argument("--storage", default=None)
    parser.add_argument("--skip-envs", action="store_true", help="only the PPO part")
    return parser


class _ImageOnly(gym.ObservationWrapper):
    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observation_space = env.observation_space["image"]

    def observation(self, observation: dict) -> np.ndarray:
        return observation["image"]


def _stepping(args: argparse.Namespace) -> None:
    actions = np.random.default_rng(0).integers(0, 7, (args.steps, args.procs))

    def ours(workers: int) -> float:
        envs = make_episodes(args.env, None, args.procs, 0)
        vec = InProcessEnvs(envs) if workers <= 1 else WorkerEnvs(envs, workers)
        vec.reset()
        start = time.perf_counter()
        for row in actions:
            vec.step(row.tolist())
        wall = time.perf_counter() - start
        vec.close()
        return wall

    def gymnasium_async() -> float:
        vec = gym.vector.AsyncVectorEnv([lambda: _ImageOnly(make_env(args.env))] * args.procs)
        vec.reset(seed=0)
        start = time.perf_counter()
        for row in actions:
            vec.step(row)
        wall = time.perf_counter() - start
        vec.close()
        return wall

    runs = {"in-process": lambda: ours(1), f"pipe workers ({args.workers})": lambda: ours(args.workers),
            f"gymnasium AsyncVectorEnv ({args.procs} processes)": gymnasium_async}
    base = None
    for name, timed in runs.items():
        wall = statistics.median(timed() for _ in range(args.repeats))
        rate = args.steps * args.procs / wall
        base = base or rate
        print(f"env stepping, {name}: {rate:.0f} steps/s ({rate / base:.2f}x in-process)")


def _agent(kind: str, model: str | None, args: argparse.Namespace, root: Path):
    if model:
        loaded = load_agent(model, root)
        return loaded.agent, loaded.vocab
    vocab = _vocabulary()
    torch.manual_seed(0)
    return build_agent(ModelConfig(len(vocab), image_dim=args.image_dim, memory_dim=args.memory_dim,
                                   instr_dim=args.instr_dim, use_thoughts=kind == "TC")), vocab


def _ppo(kind: str, model: str | None, args: argparse.Namespace, root: Path) -> dict:
    agent, vocab = _agent(kind, model, args, root)
    envs = WorkerEnvs(make_episodes(args.env, None, args.procs, 0), args.workers)
    collector = Collector(agent, vocab, envs, 0)
    optimizer = torch.optim.Adam(agent.parameters(), 1e-4, eps=1e-5)
    settings, generator = UpdateSettings(recurrence=20, epochs=4, batch_size=1280), torch.Generator()
    collect_s, update_s = [], []
    try:
        for number in range(args.updates + 1):
            start = time.perf_counter()
            exp, _ = collector.collect(40, 0.99, 0.99)
            middle = time.perf_counter()
            ppo_update(agent, optimizer, exp, settings, generator)
            if number:  # the first update warms up allocations
                collect_s.append(middle - start)
                update_s.append(time.perf_counter() - middle)
    finally:
        envs.close()
    frames = 40 * args.procs
    collect, update = statistics.median(collect_s), statistics.median(update_s)
    fps = frames / (collect + update)
    print(f"PPO {kind} ({model or 'untrained'}, memory {agent.config.memory_dim}): "
          f"{fps:.0f} frames/s (collection {frames / collect:.0f} frames/s, "
          f"{100 * collect / (collect + update):.0f}% of the time; update {frames / update:.0f} "
          f"frames/s); 1M frames: {1e6 / fps / 3600:.1f} h")
    return {"fps": fps, "collect_s": collect, "update_s": update}


def main(argv: Sequence[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    check_level(args.env)
    torch.set_num_threads(1)
    root = storage.storage_root(args.storage)
    print(f"{args.env}, {args.procs} environments, 1 torch thread")
    if not args.skip_envs:
        _stepping(args)
    return {kind: _ppo(kind, model, args, root)
            for kind, model in (("BC", args.bc_model), ("TC", args.tc_model))}


def cli() -> int:
    return run(main)


if __name__ == "__main__":
    sys.exit(cli())
