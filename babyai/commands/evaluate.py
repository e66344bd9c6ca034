"""In-distribution success of one or more models on fresh levels of their training level.

    python scripts/evaluate.py --env BabyAI-MiniBossLevel-v0 --model quick_tc --model quick_bc \\
        --episodes 200 --out storage/reports/indist

Plays `--episodes` levels with seeds `--seed`, `--seed + 1`, ... (by default a range used by
no demo, validation or level-set seed), sampled actions as in the paper (`--argmax` for
greedy). Prints success with 95% Wilson intervals, per mission type, and the future-action
declaration score of TC models; writes `summary.json` and `episodes.jsonl` in `--out`.
An untrained model (`--untrained-like MODEL`) gives the chance-level reference.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Sequence

import torch

from babyai.agent.checkpoint import load_checkpoint
from babyai.common.cli import add_storage_flag, non_negative_int, positive_int, run
from babyai.evaluation.declaration import score_records
from babyai.env.envs import check_level
from babyai.common.errors import UserError
from babyai.agent.checkpoint import load_agent
from babyai.agent.rollout import RolloutOptions, run_episodes
from babyai.evaluation.stats import (format_mission_type_table, success_by_mission_type,
                                     summarize_success)
from babyai.agent.model import build_agent
from babyai.common.runtime import pick_device
from babyai.common.storage import atomic_write_text, checkpoint_path, ensure_writable_dir, storage_root

IN_DISTRIBUTION_SEED = 3 * 10**12
"""Default first seed: above the demo/validation seeds (< 1e11) and the level sets (1e12 + i)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True, help="BabyAI level id")
    parser.add_argument("--model", action="append", default=[],
                        help="model name under <storage>/models or a .pt path (repeatable)")
    parser.add_argument("--untrained-like", default=None, metavar="MODEL",
                        help="also evaluate a freshly initialised agent with MODEL's architecture "
                             "(the chance-level reference)")
    parser.add_argument("--episodes", type=positive_int, default=200)
    parser.add_argument("--seed", type=non_negative_int, default=IN_DISTRIBUTION_SEED,
                        help="first level seed (default: a range no demo or level set uses)")
    parser.add_argument("--argmax", action="store_true", help="greedy actions (default: sampled)")
    parser.add_argument("--out", default=None, help="output directory (default: print only)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    add_storage_flag(parser)
    return parser


def untrained_copy(model: str, root: Path, seed: int = 0):
    """A freshly initialised agent with the architecture and vocabulary of `model`."""
    checkpoint = load_checkpoint(checkpoint_path(model, root))
    torch.manual_seed(seed)
    return build_agent(checkpoint.agent.config).eval(), checkpoint.vocab


def main(argv: Sequence[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    check_level(args.env)
    if not args.model and not args.untrained_like:
        raise UserError("give at least one --model (or --untrained-like)")
    root = storage_root(args.storage)
    device = pick_device(args.device)
    seeds = list(range(args.seed, args.seed + args.episodes))
    agents = [(name, *load_agent(name, root, device)[:2]) for name in args.model]
    if args.untrained_like:
        agents.append(("untrained", *untrained_copy(args.untrained_like, root)))

    summary: dict[str, dict] = {}
    lines: list[str] = []
    for name, agent, vocab in agents:
        records = run_episodes(agent.to(device), vocab, args.env, seeds, RolloutOptions(argmax=args.argmax, progress=True), device=device)
        overall = summarize_success(records)
        by_type = success_by_mission_type(records)
        entry = {"env": args.env, "seeds": [seeds[0], seeds[-1]], "argmax": args.argmax,
                 **dataclasses.asdict(overall),
                 "mean_length": sum(r.length for r in records) / len(records),
                 "by_mission_type": {k: dataclasses.asdict(v) for k, v in by_type.items()}}
        if agent.config.use_thoughts:
            entry["declaration"] = score_records(records).as_dict()
        summary[name] = entry
        print(f"{name}: success {overall.success_rate:.3f} "
              f"[{overall.ci_low:.3f}, {overall.ci_high:.3f}] on {overall.episodes} "
              f"{args.env} levels")
        print(format_mission_type_table(by_type))
        lines += [json.dumps({"model": name, **record.to_json()}) for record in records]
    if args.out:
        out = ensure_writable_dir(Path(args.out))
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
        atomic_write_text(out / "episodes.jsonl", "\n".join(lines) + "\n")
        print(f"wrote {out / 'summary.json'} and {out / 'episodes.jsonl'}")
    return summary


def cli() -> int:
    return run(main)


if __name__ == "__main__":
    sys.exit(cli())
