"""The thinking bot: minigrid's `BabyAIBot` plus the purpose of each subgoal it pushes.

`BabyAIBot` plans with a stack of small subgoals but does not record *why* it pushed an
anonymous pickup, drop or go-to. The purpose is visible in which subgoal pushed which
pattern. :class:`ThinkingBot` observes every planning call of every subgoal
(`replan_before_action` / `replan_after_action`) and every mission instruction, compares
the stack by identity before and after, and tags the new entries with an
:class:`~babyai.env.thoughts.Intention`. The bot's planning itself is never changed: the
observers only read the stack and call the original methods. The thought of a step is
:func:`babyai.env.thoughts.render` of the top entry's intention.
"""
from __future__ import annotations

import copy
import functools
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import gymnasium as gym
import numpy as np
from minigrid.core.world_object import WorldObj
from minigrid.envs.babyai.core.verifier import (
    ActionInstr,
    AfterInstr,
    GoToInstr,
    ObjDesc,
    OpenInstr,
    PickupInstr,
    PutNextInstr,
    SeqInstr,
)
from minigrid.utils.baby_ai_bot import (
    BabyAIBot,
    CloseSubgoal,
    DisappearedBoxError,
    DropSubgoal,
    ExploreSubgoal,
    GoNextToSubgoal,
    OpenSubgoal,
    PickupSubgoal,
    Subgoal,
)

from babyai.env.thoughts import Intention, render

logger = logging.getLogger(__name__)

_DESC_FAMILIES = {"goto", "pickup", "open"}
"""Families whose object is the one a GoNextTo(description) subgoal resolves to."""


class BotFailure(Exception):
    """minigrid's bot hit a situation it cannot handle (it raised); the episode is lost."""


MAX_PLANNING_CALLS = 1000
"""Subgoal planning calls allowed for one step. minigrid's bot plans in a loop until a
subgoal yields an action; from a state an agent reached (an object it saw but can no longer
reach, nothing left to explore) its subgoals can hand the turn to each other forever."""


class _RunawayPlan(AssertionError):
    """The bot planned MAX_PLANNING_CALLS times for one step without choosing an action
    (an AssertionError, so it is handled like minigrid's own failed expectations)."""


class BotStep(NamedTuple):
    """The bot's suggestion for the current state."""

    action: int
    thought: str


def _kinds(subgoals: list[Subgoal]) -> tuple[type, ...]:
    return tuple(type(subgoal) for subgoal in subgoals)


def _color_of(obj: WorldObj | None) -> str | None:
    return obj.color if obj is not None else None


def _gave_up(error: Exception) -> BotFailure:
    return BotFailure(f"the bot cannot continue: {type(error).__name__}: {error}")


def _action_instrs(instr) -> list[ActionInstr]:
    """The single-action instructions inside a (possibly composite) mission instruction."""
    if isinstance(instr, SeqInstr):
        return [*_action_instrs(instr.instr_a), *_action_instrs(instr.instr_b)]
    return [instr]


def _matches(desc: ObjDesc, obj: WorldObj) -> bool:
    return any(candidate is obj for candidate in desc.obj_set)


class _ObservedBot(BabyAIBot):
    """`BabyAIBot` that reports mission pushes and object look-ups to an observer.

    The overrides call the original methods unchanged and only look at the results.
    """

    def __init__(self, env: gym.Env, observer: "ThinkingBot", unfinished_only: bool = False) -> None:
        self._observer = observer
        self._unfinished_only = unfinished_only
        self.finished: list[ActionInstr] = []
        """Instructions left out of the plan because the environment verified them done."""
        self.last_found: tuple[ObjDesc, WorldObj | None] | None = None
        super().__init__(env)

    def _process_instr(self, instr) -> None:
        if self._unfinished_only and isinstance(instr, SeqInstr):
            # minigrid pushes b then a for Before/And (a runs first), a then b for After.
            parts = [(instr.instr_b, instr.b_done), (instr.instr_a, instr.a_done)]
            if isinstance(instr, AfterInstr):
                parts.reverse()
            for part, done in parts:
                if done == "success":
                    self.finished.extend(_action_instrs(part))
                else:
                    self._process_instr(part)
            return
        before = len(self.stack)
        super()._process_instr(instr)
        self._observer._tag_mission(instr, self.stack[before:])

    def _reachable(self, target: tuple[int, int]) -> bool:
        path, _, _ = self._shortest_path(lambda pos, cell: pos == target, try_with_blockers=True)
        return path is not None

    def _find_obj_pos(self, obj_desc, adjacent=False):
        query = obj_desc
        if self._unfinished_only:
            # minigrid pairs `obj_set[i]` with `obj_poss[i]`, but refreshes the positions
            # by scanning the grid, so once objects have moved (or one is carried) the pairs
            # no longer match and the bot may head for a stale cell. It also asserts that
            # every object it has seen is reachable, which fails once the agent has closed
            # a door behind it. A bot planning from a state the agent reached looks objects
            # up where they are and treats the ones it cannot reach as not found (it then
            # explores, which opens the closed doors).
            grid = self.mission.unwrapped.grid
            placed = [obj for obj in obj_desc.obj_set
                      if obj.cur_pos is not None and grid.get(*obj.cur_pos) is obj
                      and self._reachable(tuple(obj.cur_pos))]
            if not placed:
                self.last_found = (obj_desc, None)
                return None, None
            query = copy.copy(obj_desc)
            query.obj_set, query.obj_poss = placed, [tuple(obj.cur_pos) for obj in placed]
        obj, pos = super()._find_obj_pos(query, adjacent)
        self.last_found = (obj_desc, obj)
        return obj, pos


class ThinkingBot:
    """The expert that acts and thinks at every step.

    Build it on a freshly reset environment, then call :meth:`act` once per step.

    Attributes:
        fallbacks: how many pushes matched no known pattern (their entries inherited the
            pusher's intention); expected to stay 0, reported by `scripts/bot_report.py`.
    """

    def __init__(self, env: gym.Env) -> None:
        self.env = env
        self._tags: dict[Subgoal, Intention] = {}
        self._last_thought: str | None = None
        self._suggested: int | None = None
        self.fallbacks: Counter = Counter()
        self._planning_calls = 0
        self._bot = _ObservedBot(env, self)

    # ----------------------------------------------------------------- public

    @property
    def stack(self) -> list[Subgoal]:
        """The bot's current plan (read only; top last)."""
        return self._bot.stack

    def act(self, action_taken: int | None = None, replan: bool = False) -> BotStep:
        """Re-plan from the current state and return the suggested action and the thought.

        Args:
            action_taken: the action actually taken at the previous step (None at the first
                step). Only an action other than the bot's own suggestion (noise, or a
                learned agent acting) counts as a deviation; the bot compares.
            replan: what to do about such an action. False (demonstrations) tells minigrid's
                bot, which plans to UNDO it: go back to where it stood, drop what the agent
                picked up ("pickup X to pick up previous carrying" after a drop), close a
                door the agent opened. With a learned agent that deviates often these undo
                plans pile up, and the thoughts stop being those of the mission (in one
                measured episode the same "pick up previous" thought for 280 steps). True
                (every evaluation that consults the bot) instead drops the plan and plans
                the unfinished part of the mission from the state the agent is in, keeping
                the map the bot has seen (see :meth:`replan_from_here`).

        Raises:
            BotFailure: minigrid's bot cannot continue from this state.
        """
        self._planning_calls = 0
        if action_taken is not None and action_taken == self._suggested:
            action_taken = None  # the suggestion was followed
        if replan and action_taken is not None:
            self.replan_from_here()
            action_taken = None
        try:
            action = self._bot.replan(action_taken)
        except AssertionError as error:
            if not replan:
                raise _gave_up(error) from error
            # A one-step subgoal met a state it does not expect (e.g. a drop facing an
            # object the agent moved): a fresh plan from here usually can.
            self.replan_from_here()
            try:
                action = self._bot.replan(None)
            except (AssertionError, DisappearedBoxError) as again:
                raise _gave_up(again) from again
        except DisappearedBoxError as error:
            raise _gave_up(error) from error
        stack = self._bot.stack
        self._tags = {subgoal: self._tags[subgoal] for subgoal in stack}
        if stack:
            self._last_thought = render(self._tags[stack[-1]], self._carrying(),
                                        self._picking(stack[-1], action))
        elif self._last_thought is None:  # nothing planned at all: the mission is already done
            self._last_thought = "explore unseen area"
        self._suggested = int(action)
        return BotStep(int(action), self._last_thought)

    def replan_from_here(self) -> None:
        """Forget the plan; plan what is left of the mission from the current state.

        The new plan covers the mission instructions the environment has not yet verified as
        done (the `a_done`/`b_done` flags of its sequence instructions), and the bot keeps
        the cells it has already seen. Hands are freed first when the plan will need them:
        an object the agent carries is put down next to where it stands, unless it is the
        object a pending put-next instruction moves, in which case it is carried there.

        Raises:
            BotFailure: minigrid's bot cannot plan from this state.
        """
        seen = self._bot.vis_mask.copy()
        self._tags = {}
        self._planning_calls = 0  # a fresh plan gets a fresh budget
        try:
            self._bot = _ObservedBot(self.env, self, unfinished_only=True)
            self._bot.vis_mask = seen
            self._free_hands()
        except AssertionError as error:
            raise BotFailure(f"the bot cannot plan from here: {error}") from error

    def _free_hands(self) -> None:
        """Adapt a fresh plan to an object already in the agent's hands (see above)."""
        world = self.env.unwrapped
        carried = world.carrying
        stack = self._bot.stack
        if carried is None or not stack:
            return
        top = self._tags[stack[-1]]
        if (top.family == "pickup" and top.purpose == "putnext" and len(stack) >= 2
                and isinstance(stack[-2], PickupSubgoal)
                and _matches(stack[-1].datum, carried)):
            del stack[-2:]  # already holding what must be moved: carry it to its place
            return
        if not any(isinstance(subgoal, PickupSubgoal) for subgoal in stack):
            return
        done_pickup = any(isinstance(instr, PickupInstr) and _matches(instr.desc, carried)
                          for instr in self._bot.finished)
        intention = (Intention("drop_after_pickup", carried.color, carried.type) if done_pickup
                     else Intention("drop_temporary", carried.color, carried.type, "remove_blocker"))
        for subgoal in (DropSubgoal(self._bot), GoNextToSubgoal(self._bot, self._bot._find_drop_pos())):
            stack.append(subgoal)
            self._adopt(subgoal, intention)

    # ---------------------------------------------------------------- tagging

    def _carrying(self) -> tuple[str, str] | None:
        carried = self.env.unwrapped.carrying
        return (carried.color, carried.type) if carried is not None else None

    def _picking(self, top: Subgoal, action: int) -> tuple[str, str] | None:
        """(colour, type) of the object the plan is about to pick up, if it is one."""
        if not isinstance(top, PickupSubgoal) or action != self.env.unwrapped.actions.pickup:
            return None
        front = self.env.unwrapped.grid.get(*self.env.unwrapped.front_pos)
        return (front.color, front.type) if front is not None and front.can_pickup() else None

    def _adopt(self, subgoal: Subgoal, intention: Intention) -> None:
        """Tag a new subgoal and observe its planning calls from now on."""
        self._tags[subgoal] = intention
        for name in ("replan_before_action", "replan_after_action"):
            setattr(subgoal, name, self._observed(subgoal, getattr(subgoal, name), name))

    def _observed(self, subgoal: Subgoal, method: Callable, name: str) -> Callable:
        @functools.wraps(method)
        def call(*args):
            self._planning_calls += 1
            if self._planning_calls > MAX_PLANNING_CALLS:
                top = [type(entry).__name__ for entry in self._bot.stack[-3:]]
                raise _RunawayPlan(f"no action after {MAX_PLANNING_CALLS} planning calls "
                                   f"(top of the plan: {top})")
            self._bot.last_found = None
            result = method(*args)
            new = [entry for entry in self._bot.stack if entry not in self._tags]
            if new:
                intentions = self._purposes(subgoal, name == "replan_before_action", new, *args)
                for entry, intention in zip(new, intentions):
                    self._adopt(entry, intention)
            if name == "replan_before_action":
                self._resolve(subgoal)
            return result
        return call

    def _resolve(self, subgoal: Subgoal) -> None:
        """Name the concrete object a GoNextTo(description) is heading to (e.g. its colour)."""
        found = self._bot.last_found
        if found is None or found[0] is not subgoal.datum or found[1] is None:
            return
        old = self._tags.get(subgoal)
        if old is None or old.family not in _DESC_FAMILIES:
            return
        new = old._replace(color=found[1].color, obj=found[1].type)
        if new != old:
            for entry, intention in self._tags.items():
                if intention is old:
                    self._tags[entry] = new

    def _tag_mission(self, instr, new: list[Subgoal]) -> None:
        """Tag the subgoals pushed for one mission instruction (composites recurse first)."""
        new = [entry for entry in new if entry not in self._tags]
        if not new:
            return
        if isinstance(instr, GoToInstr):
            intentions = [Intention("goto", instr.desc.color, instr.desc.type)]
        elif isinstance(instr, OpenInstr):
            intentions = [Intention("open", instr.desc.color, "door", "mission")] * 2
        elif isinstance(instr, PickupInstr):
            desc = instr.desc
            pickup = Intention("pickup", desc.color, desc.type, "pickup")
            intentions = [Intention("drop_after_pickup", desc.color, desc.type), pickup, pickup]
        elif isinstance(instr, PutNextInstr):
            desc = instr.desc_move
            drop = Intention("drop_putnext", desc.color, desc.type)
            pickup = Intention("pickup", desc.color, desc.type, "putnext")
            intentions = [drop, drop, pickup, pickup]
        else:
            raise TypeError(f"untagged subgoals pushed by instruction {type(instr).__name__}")
        if len(intentions) != len(new):
            raise TypeError(f"{type(instr).__name__} pushed {len(new)} subgoals, "
                            f"expected {len(intentions)}")
        for entry, intention in zip(new, intentions):
            self._adopt(entry, intention)

    def _purposes(self, pusher: Subgoal, before: bool, new: list[Subgoal],
                  *args) -> list[Intention]:
        """The intentions of the subgoals `pusher` just pushed (bottom to top).

        The patterns are those of minigrid's `BabyAIBot` (see its subgoal classes).
        """
        inherited = self._tags[pusher]
        kinds = _kinds(new)
        carried = pusher.carrying
        carried_id = (_color_of(carried), carried.type if carried else None)
        if not before:
            if (isinstance(pusher, OpenSubgoal) and pusher.reason == "Unlock"
                    and pusher not in self._bot.stack and kinds == (DropSubgoal, GoNextToSubgoal)):
                return [Intention("drop_key", _color_of(pusher.fwd_cell), "key")] * 2
            return [self._undo_purpose(entry, inherited) for entry in new]
        if isinstance(pusher, GoNextToSubgoal):
            if kinds == (ExploreSubgoal,):
                return [Intention("explore")]
            if kinds == (GoNextToSubgoal, PickupSubgoal, GoNextToSubgoal):
                door, key_desc = new[0].datum, new[2].datum  # a locked door: fetch its key
                return [Intention("unlock", _color_of(door), "door"),
                        *[Intention("pickup_key", key_desc.color, "key")] * 2]
            if kinds == (OpenSubgoal,):  # a closed door on the path
                purpose = "explore" if inherited.family == "explore" else None
                return [Intention("open", _color_of(pusher.fwd_cell), "door", purpose)]
            if kinds == (GoNextToSubgoal,):  # step aside (PutNext facing an open door)
                return [inherited]
            blocker = Intention("remove_blocker", _color_of(pusher.fwd_cell),
                                pusher.fwd_cell.type if pusher.fwd_cell else None)
            if kinds == (DropSubgoal, GoNextToSubgoal, PickupSubgoal):
                return [blocker] * 3
            if len(new) == 8 and kinds[0] is PickupSubgoal and kinds[-2] is DropSubgoal:
                return [*[Intention("pickup_previous", *carried_id)] * 2, *[blocker] * 4,
                        *[Intention("drop_temporary", *carried_id, "remove_blocker")] * 2]
        elif isinstance(pusher, OpenSubgoal):
            door = pusher.fwd_cell
            unlock = Intention("unlock", _color_of(door), "door")
            key = Intention("pickup_key", _color_of(door), "key")
            if len(new) == 8 and kinds[2] is OpenSubgoal:  # carrying something: put it down
                return [*[Intention("pickup_previous", *carried_id)] * 2, unlock, unlock, key, key,
                        *[Intention("drop_temporary", *carried_id, "find_key")] * 2]
            if kinds == (OpenSubgoal, GoNextToSubgoal, PickupSubgoal, GoNextToSubgoal):
                return [unlock, unlock, key, key]
            if kinds == (CloseSubgoal,):
                return [Intention("close", _color_of(door), "door")]
            if kinds == (OpenSubgoal,):
                return [unlock]
        elif isinstance(pusher, ExploreSubgoal):
            if kinds == (GoNextToSubgoal,):
                return [Intention("explore")]
            if kinds == (OpenSubgoal, GoNextToSubgoal):
                door = new[1].datum
                if door.is_locked:
                    return [Intention("unlock", door.color, "door")] * 2
                return [Intention("open", door.color, "door", "explore")] * 2
        self.fallbacks[(type(pusher).__name__, *(kind.__name__ for kind in kinds))] += 1
        logger.debug("unrecognised push by %r: %r", pusher, new)
        return [inherited] * len(new)

    def _undo_purpose(self, entry: Subgoal, inherited: Intention) -> Intention:
        """Purpose of a subgoal pushed to undo an action the bot did not suggest."""
        fwd = self._bot.mission.unwrapped.grid.get(*entry.fwd_pos)
        if isinstance(entry, PickupSubgoal):  # something was dropped: take it back
            return Intention("pickup_previous", _color_of(fwd), fwd.type if fwd else None)
        if isinstance(entry, CloseSubgoal):
            return Intention("close", _color_of(fwd), "door")
        if isinstance(entry, OpenSubgoal):
            return Intention("open", _color_of(fwd), "door")
        return inherited


# --------------------------------------------------------------------------- one episode

Perturb = Callable[[int, int, str], tuple[int, int, str]]
"""`(step, suggested action, thought) -> (action taken, action recorded, thought recorded)`:
how noise (or anything else) overrides the bot. The bot is told the action really taken;
the episode records the other two, so a perturbation can execute a mistake while the
demonstration keeps the bot's own label for that state."""


@dataclass
class BotEpisode:
    """What the thinking bot did on one level, step by step."""

    mission: str
    images: list[np.ndarray] = field(default_factory=list)
    """The observation image before each action."""
    directions: list[int] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    """The action recorded at each step: the one taken, unless a perturbation recorded
    another (see :data:`Perturb`)."""
    thoughts: list[str] = field(default_factory=list)
    reward: float = 0.0
    """The reward of the last step."""
    failure: BotFailure | None = None
    """Set when minigrid's bot raised (the episode stops there)."""
    over_limit: bool = False
    """Stopped because it took more than `max_actions` actions."""
    fallbacks: Counter = field(default_factory=Counter)
    """See :attr:`ThinkingBot.fallbacks`."""

    @property
    def success(self) -> bool:
        return self.failure is None and not self.over_limit and self.reward > 0


def play_bot(env: gym.Env, seed: int, *, perturb: Perturb | None = None,
             max_actions: int | None = None) -> BotEpisode:
    """Reset `env` to `seed` and let the thinking bot play it to the end.

    The one place where the bot plays a whole level: demonstrations (with noise as
    `perturb`), level sets (the noise-free solution length), the bot report and pictures.
    The bot re-plans at every step, told the action really taken (it compares that with
    its own suggestion). `max_actions` stops an episode that runs longer.
    """
    obs, _ = env.reset(seed=seed)
    bot = ThinkingBot(env)
    episode = BotEpisode(obs["mission"])
    taken: int | None = None
    while True:
        try:
            suggestion, thought = bot.act(taken)
        except BotFailure as error:
            episode.failure = error
            break
        action = recorded = suggestion
        if perturb is not None:
            action, recorded, thought = perturb(len(episode.actions), suggestion, thought)
        episode.images.append(obs["image"])
        episode.directions.append(obs["direction"])
        episode.actions.append(recorded)
        episode.thoughts.append(thought)
        obs, reward, terminated, truncated, _ = env.step(action)
        episode.reward = float(reward)
        taken = action
        if terminated or truncated:
            break
        if max_actions and len(episode.actions) > max_actions:
            episode.over_limit = True
            break
    episode.fallbacks = bot.fallbacks
    return episode
