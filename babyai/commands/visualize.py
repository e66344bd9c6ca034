"""Render episodes with the agent's thoughts to GIF (or MP4): what the agent sees, thinks and does.

    tc-visualize --bot --env MiniBossLevel --seed 3 --out media/bot.gif
    tc-visualize --model tc_boss --env BossLevel --episodes 3 --bot-thoughts
    tc-visualize --demos boss_demo --episodes 2
    tc-visualize --from-jsonl storage/reports/tc/episodes.jsonl --worst 5

Each frame is the full grid (the agent's view highlighted) above a caption with the mission,
the thought in force, the bot's thought (--bot-thoughts) and the action about to be taken.
An episode of T actions gives T + 1 frames; the last one shows the outcome.
"""
from __future__ import annotations

import sys
from pathlib import Path

from babyai.common.cli import add_storage_flag, non_negative_int, positive_int, run
from babyai.common.flags import Parser
from babyai.env.envs import check_level
from babyai.common.seeds import LEVEL_SET_START
from babyai.evaluation.levels import normalize_env_name
from babyai.common.runtime import pick_device
from babyai.common.storage import check_output_picture, demos_path, report_dir, storage_root
from babyai.reports.visualize import VisualizeConfig, visualize

parser = Parser(description=__doc__)
source = parser.add_mutually_exclusive_group(required=True)
source.add_argument("--model", help="checkpoint name (under <storage>/models) or .pt path")
source.add_argument("--bot", action="store_true", help="render the thinking bot (noise-free)")
source.add_argument("--demos", help="demo file name (under <storage>/demos), path, dir or glob")
source.add_argument("--from-jsonl", type=Path,
                    help="an evaluation's per-episode JSONL: render its failed episodes")
parser.add_argument("--env", default="BossLevel",
                    help="BabyAI level (default: BossLevel; a JSONL record's own level wins)")
parser.add_argument("--seed", type=non_negative_int, default=None,
                    help=f"first env seed for --model/--bot (default: {LEVEL_SET_START}, "
                         "the held-out level-set range); with --demos, the demo to show")
parser.add_argument("--episodes", type=positive_int, default=1,
                    help="episodes to render, one file each (default: 1)")
parser.add_argument("--worst", type=positive_int, default=1,
                    help="with --from-jsonl: how many failed episodes to render (default: 1)")
parser.add_argument("--out", default=None,
                    help="output .gif or .mp4 (MP4 needs imageio-ffmpeg); a bare name goes "
                         "under <storage>/reports/visualize/ (default: <source>_<level>.gif)")
parser.add_argument("--argmax", action="store_true", help="greedy actions instead of sampling")
parser.add_argument("--bot-thoughts", action="store_true",
                    help="also caption the bot's thought for the agent's state (--model)")
parser.add_argument("--fps", type=float, default=4.0, help="frames per second (default: 4)")
parser.add_argument("--tile-size", type=positive_int, default=None,
                    help="pixels per grid cell (default: the grid about 480 px wide)")
parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
add_storage_flag(parser)


def main(argv=None):
    args = parser.parse_args(argv)
    if args.fps <= 0:
        parser.error("--fps must be positive")
    env = check_level(normalize_env_name(args.env))
    root = storage_root(args.storage)
    kind = ("model" if args.model else "bot" if args.bot else "demos" if args.demos
            else "jsonl")
    short = env.removeprefix("BabyAI-").rsplit("-", 1)[0]
    out = args.out or f"{kind}_{short}.gif"
    if not Path(out).suffix:
        out += ".gif"
    out = check_output_picture(Path(out) if "/" in out else report_dir("visualize", root) / out)
    seed = args.seed
    if seed is None and kind in ("model", "bot"):
        seed = LEVEL_SET_START
    config = VisualizeConfig(
        source=kind, env=env, out=out, seed=seed, episodes=args.episodes, model=args.model,
        demos=str(demos_path(args.demos, root)) if args.demos else None,
        jsonl=args.from_jsonl, worst=args.worst, argmax=args.argmax,
        bot_thoughts=args.bot_thoughts, fps=args.fps, tile_size=args.tile_size, storage=root,
        device=str(pick_device(args.device)))
    written = visualize(config)
    for path in written:
        print(f"wrote {path}")
    if not written:
        print("nothing to render")
    return written


def cli() -> int:
    return run(main)


if __name__ == "__main__":
    sys.exit(cli())
