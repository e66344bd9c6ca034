"""The two difficulties of out-of-distribution levels, as the paper defines them.

The level-set pickle keeps the original keys: `'demo'` holds the **behavioural** difficulty
bins, `'mission'` the **cognitive** ones (:data:`BEHAVIOURAL`, :data:`COGNITIVE`).

**Behavioural difficulty** is the length of the bot's noise-free solution, in bins of 50
steps labelled by their centres 25, 75, ..., 375 and `'425+'` for everything from 400 on.

**Cognitive difficulty** is the complexity of the mission, measured on its instruction tree
(`env.unwrapped.instrs`) right after `reset`. It counts the things an agent must keep in
mind that the level does not lay out for it, one point each:

* every primitive instruction (GoTo, Open, Pickup): 1; PutNext: 2, because it is a pickup
  and a placement relative to a second object;
* every conjunction (`and`): 1, two goals held at once in either order;
* every sequencing clause (`before` / `after` / `then`): 1, an order to respect;
* every object description with a relative location ("on your left", "behind you"): 1,
  since it refers to the agent's pose at the start and must be remembered as the agent moves;
* a locked door the bot must unlock: 1, an unstated subgoal (find the key, unlock). It is
  *must* when every object that could satisfy some primitive lies inside the locked room
  (or, for `open`, every matching door is locked).

The level is that sum clipped to 1-9. Why this shape: it grows with the structure the paper
varies (how many sub-missions, how they are sequenced, how specific the descriptions are,
whether a hidden unlock is needed), it is computed from the mission alone (cheap: a reset,
no bot run), and on BossLevel it puts about 70% of missions - the distribution the
demonstrations are drawn from - in levels 1-4 (measured on the first 3,000 level-set seeds
of BossLevel: levels 1-4 hold 68%, 5-8 hold 28%, 9 holds 3%), so the upper levels are the rare compositions the
training data barely contains, matching the paper's "training data sits at 1-4".
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from minigrid.envs.babyai.core.verifier import (AfterInstr, AndInstr, BeforeInstr, OpenInstr,
                                                PutNextInstr, SeqInstr)

from babyai.common.errors import UserError
from babyai.env.bot import play_bot
from babyai.env.envs import cached_env

BEHAVIOURAL = "demo"
"""Key of the behavioural-difficulty bins (the bot's solution length) in a level set."""
COGNITIVE = "mission"
"""Key of the cognitive-difficulty bins (the mission's complexity) in a level set."""
DIFFICULTY_KINDS = (BEHAVIOURAL, COGNITIVE)
DIFFICULTY_TITLES = {BEHAVIOURAL: "behavioural difficulty (bot solution length, steps)",
                     COGNITIVE: "cognitive difficulty (mission complexity)"}

DEMO_BIN_WIDTH = 50
DEMO_LABELS: tuple[int | str, ...] = (25, 75, 125, 175, 225, 275, 325, 375, "425+")
MISSION_LABELS: tuple[int, ...] = tuple(range(1, 10))

PAPER_TRAIN_STEPS = (15, 150)
"""The paper's training data covers roughly these solution lengths ..."""
PAPER_TRAIN_COGNITIVE = (1, 4)
"""... and these cognitive levels."""



# --------------------------------------------------------------------------- binning

def check_hard_from(hard_from: int) -> None:
    """A first hard cognitive bin that leaves both groups non-empty."""
    if not 2 <= hard_from <= MISSION_LABELS[-1]:
        raise UserError(f"--hard-from must lie in 2..{MISSION_LABELS[-1]}, got {hard_from}")


def mission_group(level: int, hard_from: int) -> str:
    """The group of cognitive bin `level` when bins from `hard_from` on count as hard:
    "1-4" or "5-9" for `hard_from` 5 (the paper's gap widens with the mission)."""
    last = MISSION_LABELS[-1]
    return f"1-{hard_from - 1}" if level < hard_from else f"{hard_from}-{last}"


def demo_bin(length: int) -> int | str:
    """The behavioural-difficulty label of a solution of `length` steps."""
    if length < 0:
        raise ValueError(f"solution length must be >= 0, got {length}")
    index = length // DEMO_BIN_WIDTH
    if index >= len(DEMO_LABELS) - 1:
        return DEMO_LABELS[-1]
    return DEMO_LABELS[index]


@dataclass(frozen=True)
class MissionComplexity:
    """The parts of a mission's cognitive difficulty (see the module docstring)."""

    primitives: int
    """Number of GoTo/Open/Pickup/PutNext instructions."""
    putnext: int
    """How many of them are PutNext (each counts one extra point)."""
    conjunctions: int
    """Number of `and` nodes."""
    sequences: int
    """Number of `before`/`after` nodes."""
    locations: int
    """Number of object descriptions with a relative location."""
    must_unlock: int
    """1 if the mission cannot be done without unlocking the locked door, else 0."""

    @property
    def raw(self) -> int:
        """The unclipped sum of points."""
        return (self.primitives + self.putnext + self.conjunctions + self.sequences
                + self.locations + self.must_unlock)

    @property
    def level(self) -> int:
        """Cognitive difficulty 1-9."""
        return max(MISSION_LABELS[0], min(MISSION_LABELS[-1], self.raw))


def _primitives(instr: Any) -> list[Any]:
    if isinstance(instr, SeqInstr):
        return _primitives(instr.instr_a) + _primitives(instr.instr_b)
    return [instr]


def _count_nodes(instr: Any, kind: type) -> int:
    own = int(isinstance(instr, kind))
    if isinstance(instr, SeqInstr):
        return own + _count_nodes(instr.instr_a, kind) + _count_nodes(instr.instr_b, kind)
    return own


def _descriptions(primitive: Any) -> list[Any]:
    if isinstance(primitive, PutNextInstr):
        return [primitive.desc_move, primitive.desc_fixed]
    return [primitive.desc]


def _needs_unlock(primitive: Any, locked_room: Any) -> bool:
    """Whether every way to satisfy `primitive` goes through the locked door."""
    if locked_room is None:
        return False
    if isinstance(primitive, OpenInstr):
        doors = primitive.desc.obj_set
        return bool(doors) and all(getattr(door, "is_locked", False) for door in doors)
    for desc in _descriptions(primitive):
        inside = [obj.type != "door" and locked_room.pos_inside(*pos)
                  for obj, pos in zip(desc.obj_set, desc.obj_poss)]
        if inside and all(inside):
            return True
    return False


def mission_complexity(env: Any) -> MissionComplexity:
    """Measure the mission of a freshly reset BabyAI level (its `instrs` tree)."""
    level = env.unwrapped
    instrs = level.instrs
    primitives = _primitives(instrs)
    locked_room = getattr(level, "locked_room", None)
    return MissionComplexity(
        primitives=len(primitives),
        putnext=sum(isinstance(p, PutNextInstr) for p in primitives),
        conjunctions=_count_nodes(instrs, AndInstr),
        sequences=_count_nodes(instrs, BeforeInstr) + _count_nodes(instrs, AfterInstr),
        locations=sum(desc.loc is not None for p in primitives for desc in _descriptions(p)),
        must_unlock=int(any(_needs_unlock(p, locked_room) for p in primitives)),
    )


# --------------------------------------------------------------------------- measuring a seed

def solution_length(env_name: str, seed: int) -> int | None:
    """Length of the bot's noise-free solution of (level, seed); None if the bot fails.

    The bot plays through :func:`babyai.env.bot.play_bot`, the same function that makes
    the demonstrations, so level sets and demonstrations agree on "the bot's solution".
    """
    played = play_bot(cached_env(env_name), seed)
    return len(played.actions) if played.success else None


def measure_seed(env_name: str, seed: int) -> dict:
    """Everything a level set records about one seed (a plain dict, so the pickle is portable)."""
    env = cached_env(env_name)
    obs, _ = env.reset(seed=seed)
    complexity = mission_complexity(env)
    length = solution_length(env_name, seed)
    return {
        "seed": seed,
        "mission": obs["mission"],
        "length": length,
        "solved": length is not None,
        "demo_bin": None if length is None else demo_bin(length),
        "cognitive": complexity.level,
        "complexity": asdict(complexity),
    }


def in_training_range(kind: str, label: Any) -> bool:
    """Whether a bin overlaps what the paper's training data covers."""
    if kind == COGNITIVE:
        return PAPER_TRAIN_COGNITIVE[0] <= label <= PAPER_TRAIN_COGNITIVE[1]
    if label == DEMO_LABELS[-1]:
        return False
    low, high = label - DEMO_BIN_WIDTH // 2, label + DEMO_BIN_WIDTH // 2
    return low < PAPER_TRAIN_STEPS[1] and high > PAPER_TRAIN_STEPS[0]
