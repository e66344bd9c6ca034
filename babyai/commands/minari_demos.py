"""Exchange thought demonstrations as Minari datasets (needs `pip install -e ".[minari]"`).

    # our demos -> a Minari dataset under <storage>/minari (thoughts in infos["thought"])
    tc-minari export --demos mini1k --dataset-id babyai/minibosslevel/tc-v0
    # a Minari BabyAI dataset (an id under <storage>/minari, or a dataset directory) -> demos
    tc-minari import --dataset babyai/minibosslevel/tc-v0 --demos from_minari --valid-episodes 100

Export replays every episode from its seed (so the dataset holds the final observations,
rewards and terminations, and an episode that does not replay exactly is refused). Import
writes `<storage>/demos/<name>.pkl` and its `_valid` file (the last --valid-episodes
episodes); a dataset without thoughts can train BC only. Nothing is ever downloaded.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Sequence

from babyai.common import flags
from babyai.common.cli import add_storage_flag, non_negative_int, run
from babyai.common.errors import UserError
from babyai.common.locks import writer_lock
from babyai.common.storage import demos_path, ensure_writable_dir, storage_root, valid_path
from babyai.demos.files import load_demos, read_demo_file, read_demo_meta, save_demos
from babyai.demos.minari_io import export_minari, import_minari
from babyai.env.envs import check_level
from babyai.evaluation.levels import normalize_env_name
from babyai.training.dagger import SOURCE as DAGGER_SOURCE


def build_parser() -> argparse.ArgumentParser:
    parser = flags.Parser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    out = commands.add_parser("export", help="our demos -> a Minari dataset")
    out.add_argument("--demos", required=True, help="dataset name under <storage>/demos or a path")
    out.add_argument("--dataset-id", required=True,
                     help="Minari id, e.g. babyai/minibosslevel/tc-v0")
    out.add_argument("--env", default=None,
                     help="level of the demos (default: the one their file records)")
    out.add_argument("--minari-root", default=None,
                     help="Minari datasets directory (default: <storage>/minari)")
    into = commands.add_parser("import", help="a Minari BabyAI dataset -> our demos")
    into.add_argument("--dataset", required=True,
                      help="Minari id under --minari-root, or a dataset directory")
    into.add_argument("--demos", required=True, help="output name under <storage>/demos")
    into.add_argument("--valid-episodes", type=non_negative_int, default=None,
                      help="last N episodes go to the _valid file (default: a tenth, at least 1)")
    into.add_argument("--minari-root", default=None,
                      help="Minari datasets directory (default: <storage>/minari)")
    into.add_argument("--overwrite", action="store_true",
                      help="replace existing demo files of that name")
    for sub in (out, into):  # subparsers are flags.Parser too: one-line errors
        add_storage_flag(sub)
    return parser


def _export(args: argparse.Namespace) -> Path:
    root = storage_root(args.storage)
    source = demos_path(args.demos, root)
    meta = read_demo_meta(source)
    if meta.get("slip_rate") or meta.get("source") == DAGGER_SOURCE:
        raise UserError(f"{source} records the bot's labels, not the actions taken (made with "
                        "slips or by DAgger), so its episodes do not replay; Minari datasets "
                        "must replay")
    env = args.env or meta.get("env")
    if not env:
        raise UserError(f"{source} does not record its level; pass --env")
    env = check_level(normalize_env_name(env))
    minari_root = Path(args.minari_root) if args.minari_root else root / "minari"
    target = minari_root / args.dataset_id
    if target.exists():
        raise UserError(f"Minari dataset {args.dataset_id} already exists at {target}; choose "
                        "another --dataset-id (Minari datasets are never replaced)")
    ensure_writable_dir(minari_root)
    with writer_lock(target, "Minari dataset"):
        episodes = load_demos(source)
        path = export_minari(episodes, env, args.dataset_id, minari_root)
    print(f"exported {len(episodes)} episodes of {env} to {path}")
    return path


def _import(args: argparse.Namespace) -> Path:
    root = storage_root(args.storage)
    minari_root = Path(args.minari_root) if args.minari_root else root / "minari"
    train = demos_path(args.demos, root)
    valid = valid_path(train)
    for path in (train, valid):
        if path.exists() and not args.overwrite:
            raise UserError(f"{path} exists; choose another --demos name, or pass --overwrite "
                            "to replace it")
    ensure_writable_dir(train.parent)
    with writer_lock(train, "dataset"):
        imported = import_minari(args.dataset, minari_root)
        count = len(imported.episodes)
        held_out = args.valid_episodes if args.valid_episodes is not None else max(1, count // 10)
        if not 0 < held_out < count:
            raise UserError(f"{args.dataset} has {count} episodes: --valid-episodes must be "
                            f"between 1 and {count - 1}")
        run_id = hashlib.sha256(f"minari:{args.dataset}:{count}:{held_out}".encode()).hexdigest()
        meta = {"env": imported.env, "source": f"minari:{args.dataset}",
                "has_thoughts": imported.has_thoughts, "run_id": run_id[:16]}
        save_demos(train, imported.episodes[:count - held_out], {**meta, "split": "train"})
        save_demos(valid, imported.episodes[count - held_out:], {**meta, "split": "valid"})
    read_demo_file(train)  # the file as training will read it: every episode checked
    kind = "TC or BC" if imported.has_thoughts else "BC only (the dataset has no thoughts)"
    print(f"imported {count - held_out} + {held_out} episodes of {imported.env} into {train} "
          f"and {valid}; train {kind}")
    return train


def main(argv: Sequence[str] | None = None) -> Path:
    args = build_parser().parse_args(argv)
    return _export(args) if args.command == "export" else _import(args)


def cli() -> int:
    return run(main)


if __name__ == "__main__":
    sys.exit(cli())
