"""A TC agent's thoughts and actions on the bot's own path, per difficulty group.

    tc-open-loop --model base5k_tc_s1 --levels mb_ood40 --fresh 300 --out open_loop.csv

The bot plays each level without noise; the agent watches its observations, thinks with
its own thought history and picks actions greedily (see babyai/evaluation/open_loop.py).
Prints per group (fresh levels of the level set's env with `--fresh N`; the level set's
cognitive bins below and from `--hard-from`): how many of the bot's steps the agent's
action and thought equal, and how the other thoughts differ (stale/early: a timing error;
other object: the right intention about another object; other family), then the families
of the bot's thoughts with the share of each the agent names exactly. Next to the closed
-loop figures of `tc-evaluate-levels --thought-agreement`, it tells an upper level that
cannot name the subgoal from one that loses its way off the demonstrator's states.

With `--object-reading`, also the lower level's reading of the object its thought names,
by intervention on the same levels (babyai/evaluation/object_reading.py): at the bot's
pick-up steps, the agent's probability of pickup fed the bot's thought, and that thought
changed to name another colour, another kind of object, or another family.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from babyai.agent.checkpoint import load_agent
from babyai.common.cli import non_negative_int, positive_int, run
from babyai.common.errors import UserError
from babyai.common.flags import Parser
from babyai.common.runtime import pick_device
from babyai.common.seeds import IN_DISTRIBUTION_START
from babyai.common.storage import check_output_file, existing_levels_path, storage_root
from babyai.evaluation.difficulty import COGNITIVE, check_hard_from, mission_group
from babyai.evaluation.level_files import level_set_env, read_level_set
from babyai.evaluation.ood import select_seeds
from babyai.evaluation.object_reading import CHANGES, ObjectReading, object_reading
from babyai.evaluation.open_loop import OpenLoopSummary, bot_episodes, summarize, watch
from babyai.evaluation.writers import write_csv

TIMING = ("stale", "early")


def level_groups(levels: dict, hard_from: int, per_bin: int | None) -> dict[str, list[int]]:
    """Cognitive-bin seeds of a level set (at most `per_bin` per bin, in the file's order),
    pooled into "bins 1-4" and "bins 5-9" (for `hard_from` 5)."""
    groups: dict[str, list[int]] = {}
    for (kind, label), seeds in select_seeds(levels, per_bin).items():
        if kind == COGNITIVE:
            groups.setdefault(f"bins {mission_group(int(label), hard_from)}", []).extend(seeds)
    return {name: seeds for name, seeds in groups.items() if seeds}


def format_summary(model: str, group: str, summary: OpenLoopSummary, failed: int) -> str:
    kinds = summary.kinds
    line = (f"{model} {group}: {summary.episodes} levels, {summary.steps} steps; actions equal "
            f"{100 * summary.action_match:.1f}%, thoughts equal {100 * kinds['match']:.1f}% "
            f"(timing {100 * sum(kinds[k] for k in TIMING):.1f}%, other object "
            f"{100 * kinds['other_object']:.1f}%, other family {100 * kinds['other_family']:.1f}%)")
    if failed:
        line += f"; the bot failed {failed} level(s), left out"
    families = ", ".join(f"{family} {100 * share:.0f}% of steps -> {100 * exact:.0f}% exact"
                         for family, (share, exact) in summary.families.items() if share >= 0.02)
    return f"{line}\n  by the bot's thought family: {families}"


def format_reading(reading: ObjectReading) -> str:
    if not reading.steps:
        return "  object reading: no pick-up step of the bot names a colour here"
    shares = {change: f"{100 * p:.1f}%" for change, p in reading.pickup.items()}
    return (f"  object reading, {reading.steps} pick-up steps of the bot: P(pickup) with its "
            f"thought {shares['none']}, naming another colour {shares['colour']}, another "
            f"kind {shares['kind']}, another family {shares['family']}")


def main(argv: Sequence[str] | None = None) -> list[dict]:
    parser = Parser(description=__doc__)
    parser.add_argument("--model", action="append", required=True,
                        help="a TC model name under <storage>/models or a .pt path (repeat)")
    parser.add_argument("--levels", default=None,
                        help="a level set (tc-make-levels; a name under <storage>/levels or a path)")
    parser.add_argument("--env", default=None,
                        help="level for --fresh (default: the level set's)")
    parser.add_argument("--fresh", type=non_negative_int, default=0,
                        help="also watch the bot on this many fresh levels of --env")
    parser.add_argument("--per-bin", type=positive_int, default=None,
                        help="at most this many levels per cognitive bin (default: all)")
    parser.add_argument("--hard-from", type=positive_int, default=5,
                        help="first cognitive bin of the hard group")
    parser.add_argument("--object-reading", action="store_true",
                        help="also measure whether the lower level reads the object its "
                             "thought names (P(pickup) at the bot's pick-up steps with the "
                             "thought's colour, kind or family changed)")
    parser.add_argument("--out", type=Path, default=None, help="a CSV file to write")
    parser.add_argument("--storage", default=None, help="storage root")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    args = parser.parse_args(argv)
    check_hard_from(args.hard_from)
    if args.levels is None and not args.fresh:
        raise UserError("nothing to watch: give --levels, --fresh N or both")
    if args.out is not None:
        check_output_file(args.out)
    root = storage_root(args.storage)
    groups: dict[str, list[int]] = {}
    env = args.env
    if args.levels is not None:
        path = existing_levels_path(args.levels, root)
        env = env or level_set_env(path)
        groups.update(level_groups(read_level_set(path), args.hard_from, args.per_bin))
    if env is None:
        raise UserError("--fresh needs --env (or a level set that names its env)")
    if args.fresh:
        groups = {"fresh levels": list(range(IN_DISTRIBUTION_START,
                                             IN_DISTRIBUTION_START + args.fresh)), **groups}
    if not groups:
        raise UserError(f"{args.levels}: no cognitive-bin levels to watch")
    device = pick_device(args.device)
    agents = [(name, load_agent(name, root, device)) for name in args.model]  # fail early
    for name, loaded in agents:
        if not loaded.agent.config.use_thoughts:
            raise UserError(f"{name}: a BC model has no thoughts to compare")
    played = {group: bot_episodes(env, seeds) for group, seeds in groups.items()}
    rows = []
    for name, loaded in agents:
        for group, (episodes, failed) in played.items():
            summary = summarize(watch(loaded.agent, loaded.vocab, episodes, device=device))
            print(format_summary(name, group, summary, len(failed)))
            row = {"model": name, "group": group, "levels": summary.episodes,
                   "bot_failed": len(failed), "steps": summary.steps,
                   "action_match": round(summary.action_match, 4),
                   **{f"thought_{kind}": round(share, 4) for kind, share in summary.kinds.items()}}
            if args.object_reading:
                reading = object_reading(loaded.agent, loaded.vocab, episodes, device=device)
                print(format_reading(reading))
                row["pickup_steps"] = reading.steps
                row.update({f"pickup_{change}": round(reading.pickup[change], 4)
                            for change in CHANGES})
            rows.append(row)
    if args.out is not None:
        print(f"wrote {write_csv(args.out, rows)}")
    return rows


def cli() -> int:
    return run(main)


if __name__ == "__main__":
    sys.exit(cli())
