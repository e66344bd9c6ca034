"""Evaluation speed: N BossLevel episodes batched vs one at a time, and where time goes.

    python scripts/bench_eval.py                       # CPU-size TC agent (memory 256)
    python scripts/bench_eval.py --memory-dim 2048 --instr-dim 256   # the paper's size

The agent is untrained (random weights): speed does not depend on what it learned, but an
untrained agent never finishes, so every episode is capped at --max-steps (BossLevel's own
limit is 2880). The batched run plays all --episodes; the one-at-a-time run plays only the
first --single-episodes of the same seeds and is scaled to all of them by the number of
agent steps (with per-episode sampling streams the two runs play the same episodes).
Rendering is timed on --render-episodes episodes and reported per frame. Time is split into
environment (reset, step), model (forward incl. mission encoding), decode+sample
(thought decoding to text, action sampling), render, and the rest (bookkeeping).
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

import torch

from babyai.common.flags import Parser
from babyai.common.cli import non_negative_int, positive_int, run
from babyai.env.envs import check_level, make_env
from babyai.agent.rollout import RolloutOptions, run_episodes
from babyai.agent.model import ModelConfig, build_agent, count_parameters
from babyai.env.thoughts import COLORS, FAMILIES
from babyai.data.vocab import Vocabulary, tokenize

MISSION_WORDS = ("go to the a pick up open put next and then after you on your left right "
                 "in front of behind key ball box door")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(description=__doc__)
    parser.add_argument("--env", default="BabyAI-BossLevel-v0")
    parser.add_argument("--episodes", type=positive_int, default=512)
    parser.add_argument("--single-episodes", type=positive_int, default=32,
                        help="episodes played one at a time, scaled to --episodes (default 32)")
    parser.add_argument("--render-episodes", type=non_negative_int, default=8)
    parser.add_argument("--max-steps", type=positive_int, default=64,
                        help="step cap per episode (default 64; untrained agents never finish)")
    parser.add_argument("--max-batch", type=positive_int, default=128)
    parser.add_argument("--memory-dim", type=positive_int, default=256)
    parser.add_argument("--instr-dim", type=positive_int, default=128)
    parser.add_argument("--image-dim", type=positive_int, default=128)
    parser.add_argument("--bc", action="store_true", help="time a BC agent instead of TC")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    return parser


def _vocabulary() -> Vocabulary:
    words = [MISSION_WORDS, " ".join(COLORS)]
    words += [family.pattern.pattern for family in FAMILIES]  # the words of every family
    return Vocabulary.build([" ".join(tokenize(text)) for text in words])


def _timed(agent, vocab, env: str, seeds: Sequence[int], **kwargs) -> tuple[float, int, dict]:
    timings: dict[str, float] = {}
    start = time.perf_counter()
    records = run_episodes(agent, vocab, env, seeds, RolloutOptions(timings=timings, **kwargs))
    wall = time.perf_counter() - start
    timings["other"] = wall - sum(timings.values())
    return wall, sum(record.length for record in records), timings


def _split(timings: dict, wall: float) -> str:
    order = ("env reset", "env step", "model", "decode+sample", "bot", "render", "other")
    return ", ".join(f"{name} {100 * timings[name] / wall:.0f}%" for name in order
                     if name in timings)


def main(argv: Sequence[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    check_level(args.env)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    vocab = _vocabulary()
    agent = build_agent(ModelConfig(vocab_size=len(vocab), memory_dim=args.memory_dim,
                                    instr_dim=args.instr_dim, image_dim=args.image_dim,
                                    use_thoughts=not args.bc))
    seeds = list(range(args.seed, args.seed + args.episodes))
    common = dict(max_steps=args.max_steps, sample_seed=args.seed)
    kind = "BC" if args.bc else "TC"
    print(f"{kind} agent, {count_parameters(agent) / 1e6:.1f}M parameters, memory "
          f"{args.memory_dim}, {args.threads} torch thread(s), {args.env}, "
          f"episodes capped at {args.max_steps} steps")

    run_episodes(agent, vocab, args.env, seeds[:2], RolloutOptions(**common))  # warm-up (allocations)
    wall, steps, timings = _timed(agent, vocab, args.env, seeds, max_batch=args.max_batch,
                                  progress=True, **common)
    print(f"batched (max_batch {args.max_batch}): {args.episodes} episodes, {steps} steps in "
          f"{wall:.1f}s = {steps / wall:.0f} steps/s; {_split(timings, wall)}")

    subset = seeds[: args.single_episodes]
    single_wall, single_steps, single_timings = 0.0, 0, {}
    for seed in subset:
        part_wall, part_steps, part = _timed(agent, vocab, args.env, [seed], max_batch=1,
                                             **common)
        single_wall += part_wall
        single_steps += part_steps
        for name, value in part.items():
            single_timings[name] = single_timings.get(name, 0.0) + value
    scaled = single_wall * steps / single_steps
    print(f"one at a time: {len(subset)} episodes, {single_steps} steps in {single_wall:.1f}s "
          f"= {single_steps / single_wall:.0f} steps/s; {_split(single_timings, single_wall)}")
    print(f"one at a time, scaled to {args.episodes} episodes ({steps} steps): {scaled:.1f}s")
    print(f"speed-up of batching: {scaled / wall:.1f}x (target >= 5x)")

    result = {"batched_s": wall, "single_scaled_s": scaled, "ratio": scaled / wall,
              "steps": steps, "batched_timings": timings}
    if args.render_episodes:
        env = make_env(args.env, render_mode="rgb_array")
        frames, start = 0, time.perf_counter()
        for seed in seeds[: args.render_episodes]:
            env.reset(seed=seed)
            for _ in range(args.max_steps):
                env.render()
                frames += 1
                env.step(env.action_space.sample())
        render_wall = time.perf_counter() - start
        step_wall, start = 0.0, time.perf_counter()
        for seed in seeds[: args.render_episodes]:
            env.reset(seed=seed)
            for _ in range(args.max_steps):
                env.step(env.action_space.sample())
        step_wall = time.perf_counter() - start
        per_frame = (render_wall - step_wall) / frames
        print(f"rendering (render=True, for pictures only): {1000 * per_frame:.1f} ms per frame; "
              f"rendering every step of the batched run would add ~{per_frame * steps:.0f}s "
              f"({100 * per_frame * steps / wall:.0f}% of it)")
        result["render_ms_per_frame"] = 1000 * per_frame
    return result


def cli() -> int:
    return run(main)


if __name__ == "__main__":
    sys.exit(cli())
