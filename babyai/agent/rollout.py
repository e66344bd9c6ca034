"""Batched evaluation over explicit seeds, returning one record per episode.

One environment per seed; up to `max_batch` of them are stepped together with one model call
per step. A finished episode leaves the batch and the next seed takes its place (its
recurrent memory starts from zeros), so the batch stays full until the seeds run out.

Sampling (the paper's default) draws each episode's actions from its own random stream,
seeded by `(sample_seed, env seed)`: the outcome of an episode does not depend on which
other episodes share its batch, on `max_batch`, or on how seeds are split among workers.
Greedy actions (`argmax=True`) make batched and one-at-a-time evaluation agree exactly.
"""
from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from tqdm import tqdm

from babyai.agent.records import EpisodeRecord, Intervention, ObjectRef, StepEvent
from babyai.common.errors import UserError
from babyai.data.vocab import PAD, Vocabulary
from babyai.env.bot import BotFailure, ThinkingBot
from babyai.env.envs import make_env
from babyai.env.thoughts import FAMILY_NAMES, thought_family

logger = logging.getLogger(__name__)


def _requested_object_ids(instr: Any) -> set[int]:
    """ids of every object a (possibly compound) instruction describes."""
    ids: set[int] = set()
    for name in ("desc", "desc_move", "desc_fixed"):
        desc = getattr(instr, name, None)
        if desc is not None:
            ids.update(id(obj) for obj in desc.obj_set)
    for name in ("instr_a", "instr_b"):
        sub = getattr(instr, name, None)
        if sub is not None:
            ids |= _requested_object_ids(sub)
    return ids


class _Clock:
    """Adds wall time per named section to `timings` (a no-op when it is None)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings

    @contextlib.contextmanager
    def section(self, name: str):
        if self.timings is None:
            yield
            return
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start


class _Slot:
    """One running episode: its environment, record and bot."""

    def __init__(self, index: int, seed: int, env_name: str, *, render: bool, with_bot: bool,
                 sample_seed: int, max_steps: int | None, clock: _Clock | None = None,
                 keep_observations: bool = False) -> None:
        self.index = index
        self.clock = clock or _Clock(None)
        options: dict[str, Any] = {"render_mode": "rgb_array"} if render else {}
        if max_steps is not None:
            options["max_steps"] = max_steps
        self.env = make_env(env_name, **options)
        self.obs, _ = self.env.reset(seed=int(seed))
        self.world = self.env.unwrapped
        self.requested = _requested_object_ids(self.world.instrs)
        self.record = EpisodeRecord(seed=int(seed), mission=self.obs["mission"], env_name=env_name)
        self.rng = np.random.default_rng([int(sample_seed), int(seed)])
        # Who drives each step under a bot/agent mixture: a stream of its own, so the
        # agent's action draws are the same with or without one.
        self.mix_rng = np.random.default_rng([int(sample_seed), int(seed), 1])
        self.render = render
        self.keep_observations = keep_observations
        if render:
            with self.clock.section("render"):
                self.record.frames.append(self.env.render())
        self.bot = None
        self.prev_action: int | None = None
        if with_bot:
            self.bot = ThinkingBot(self.env)
        self.bot_thought: str = ""
        # The partial oracle's draws: a stream of its own, so actions are drawn the same.
        self.oracle_rng = np.random.default_rng([int(sample_seed), int(seed), 2])
        self.subgoal: str | None = None  # the bot's thought the current draw was made for
        self.handed = False  # whether the lower level reads the bot's `subgoal`

    def _ref(self, obj: Any) -> ObjectRef | None:
        if obj is None or obj.type == "wall":
            return None
        return ObjectRef(obj.type, obj.color, id(obj) in self.requested)

    def ask_bot(self) -> bool:
        """The bot's thought for the current state; False once the bot has given up.

        When the agent did not take the bot's suggestion, the bot plans the rest of the
        mission afresh from the state the agent reached instead of planning to undo the
        agent's action (see :meth:`ThinkingBot.act`), so its thought stays the one the
        mission needs from here.
        """
        if self.bot is None:
            return False
        try:
            suggestion = self.bot.act(self.prev_action, replan=True)
        except BotFailure as error:
            logger.debug("seed %d: bot failed at step %d: %s", self.record.seed,
                         self.record.length, error)
            self.record.bot_failure = f"step {self.record.length}: {error}"
            self.bot = None
            self.bot_thought = ""
            return False
        self.bot_thought = suggestion.thought
        self.record.bot_thoughts.append(self.bot_thought)
        self.record.bot_actions.append(int(suggestion.action))
        return True

    def hand_over(self, share: float, families: Sequence[str] = ()) -> bool:
        """Whether the lower level reads the bot's thought at this step (after `ask_bot`).

        One draw per subgoal: when the bot's thought changes, it is handed over for as
        long as it lasts with probability `share` (and only if it is of one of `families`,
        when given; the draw is made either way, so selections share their draws);
        otherwise the agent reads its own.
        """
        if self.bot is None:
            return False
        if self.bot_thought != self.subgoal:
            self.subgoal = self.bot_thought
            drawn = share >= 1.0 or self.oracle_rng.random() < share
            self.handed = drawn and (not families
                                     or thought_family(self.bot_thought) in families)
        return self.handed

    def step(self, action: int) -> bool:
        """Execute `action`, record what it met; True when the episode is over."""
        world = self.world
        if self.keep_observations:
            self.record.observations.append(
                (np.array(self.obs["image"], dtype=np.uint8), int(self.obs["direction"])))
        front = self._ref(world.grid.get(*world.front_pos))
        before = self._ref(world.carrying)
        with self.clock.section("env step"):
            self.obs, reward, terminated, truncated, _ = self.env.step(action)
        self.record.events.append(StepEvent(action, front, before, self._ref(world.carrying)))
        self.record.actions.append(action)
        self.record.length += 1
        self.record.reward += float(reward)
        self.prev_action = action
        if self.render:
            with self.clock.section("render"):
                self.record.frames.append(self.env.render())
        if terminated or truncated:
            self.record.success = self.record.reward > 0
            return True
        return False

    def halt(self, step: int, reason: Any) -> None:
        self.record.halted = True
        self.record.halt_step = step
        self.record.halt_reason = reason if isinstance(reason, str) else "intervention"
        self.record.success = False

    def close(self) -> None:
        self.env.close()


def pad_tokens(sequences: Sequence[Sequence[int]], device: Any = None) -> torch.Tensor:
    """Right-pad token lists with PAD into a LongTensor [B, max_len] (at least 1 column)."""
    width = max(1, max((len(seq) for seq in sequences), default=1))
    out = torch.full((len(sequences), width), PAD, dtype=torch.long)
    for row, seq in enumerate(sequences):
        if seq:
            out[row, : len(seq)] = torch.as_tensor(list(seq), dtype=torch.long)
    return out.to(device) if device is not None else out


class _Batch:
    """The running slots with their recurrent memory and mission encoding, row-aligned."""

    def __init__(self) -> None:
        self.slots: list[_Slot] = []
        self.memory: Any = None
        self.mission: Any = None

    def add(self, fresh: list[_Slot], agent: Any, vocab: Vocabulary, device: Any) -> None:
        new_memory = agent.initial_memory(len(fresh), device)
        if self.slots:
            new_memory = type(new_memory)(*(torch.cat([old, new], dim=0)
                                            for old, new in zip(self.memory, new_memory)))
        self.memory = new_memory
        self.slots = self.slots + fresh
        # Re-encoded as a whole: a mission's features do not depend on the batch's padding.
        self.mission = agent.encode_missions(pad_tokens(
            [vocab.encode(slot.record.mission) for slot in self.slots], device))

    def keep(self, rows: list[int], device: Any) -> None:
        if len(rows) == len(self.slots):
            return
        self.slots = [self.slots[row] for row in rows]
        if self.slots:
            index = torch.tensor(rows, dtype=torch.long, device=device)
            self.memory, self.mission = self.memory.index(index), self.mission.index(index)


def _mix(slot: _Slot, action: int, bot_answered: bool, bot_share: float) -> int:
    """The bot's suggestion with probability `bot_share` (where it answered), else `action`."""
    if bot_answered and slot.mix_rng.random() < bot_share:
        slot.record.bot_steps += 1
        return slot.record.bot_actions[-1]
    return action


def _choose_actions(logits: torch.Tensor, slots: Sequence[_Slot], argmax: bool) -> list[int]:
    if argmax:
        return logits.argmax(dim=-1).tolist()
    probs = torch.softmax(logits.double(), dim=-1).cpu().numpy()
    cumulative = np.cumsum(probs, axis=-1)
    draws = np.array([slot.rng.random() for slot in slots])[:, None] * cumulative[:, -1:]
    actions = (cumulative <= draws).sum(axis=-1)
    return np.minimum(actions, probs.shape[-1] - 1).tolist()


THOUGHT_ABLATIONS = ("none", "oracle", "zeroed", "shuffled")
"""How much do an agent's actions depend on what it thinks: the four conditions."""


@dataclass(frozen=True)
class ThoughtCondition:
    """What a TC model's lower level reads in one evaluated series (see RolloutOptions)."""

    ablation: str = "none"
    oracle_share: float = 1.0
    oracle_families: tuple[str, ...] = ()

    def label(self, model: str) -> str:
        """How reports name the model under this condition, e.g. `tc (oracle thoughts)`."""
        if self.ablation == "none":
            return model
        parts = [f"{self.ablation} thoughts"]
        if self.oracle_share < 1.0:
            parts.append(f"{100 * self.oracle_share:g}% of subgoals")
        if self.oracle_families:
            parts.append("families " + "+".join(self.oracle_families))
        return f"{model} ({', '.join(parts)})"


def thought_conditions(ablations: Sequence[str], oracle_shares: Sequence[float] = (1.0,),
                       oracle_families: Sequence[str] = ()) -> list[ThoughtCondition]:
    """The conditions of the evaluation flags: one per ablation, the oracle once per share
    (with the families), in the given order."""
    return [ThoughtCondition(ablation, share, tuple(oracle_families))
            if ablation == "oracle" else ThoughtCondition(ablation)
            for ablation in ablations
            for share in (oracle_shares if ablation == "oracle" else (1.0,))]


ORACLE_VERSION = 2
"""Bumped whenever what the bot answers at evaluation changes (2: it plans afresh after an
action it did not suggest), so cached oracle results of an older bot are not reused."""


@dataclass
class RolloutOptions:
    """How `run_episodes` plays: everything but the agent, the level and the seeds."""

    argmax: bool = False
    """Greedy actions instead of sampling (the paper samples)."""
    max_batch: int = 64
    """Environments stepped together."""
    thought_ablation: str = "none"
    """What the lower level reads (TC agents): `none` its own generated thought; `oracle`
    the bot's thought for the state, also fed to the thought history (the paper's "oracle
    thoughts + learned control" bound; where the bot gives up, the agent's own thought);
    `zeroed` all-zero thought features; `shuffled` the thought of another episode of the
    batch. See THOUGHT_ABLATIONS."""
    oracle_share: float = 1.0
    """With `oracle`: the share of the bot's subgoals handed to the lower level. Each time
    the bot's thought changes, the lower level (and the thought history) reads it until its
    next change with this probability, else the agent's own thought: how good must the
    thoughts be before they pay (1: the full bound)."""
    oracle_families: tuple[str, ...] = ()
    """With `oracle`: hand over only the bot's thoughts of these families (`thought_family`
    names, e.g. explore, open); empty: every family. Which thoughts carry the gain."""
    bot_thoughts: bool = False
    """Also record the bot's thought for every state the agent visits."""
    intervention: Intervention | None = None
    """`f(thought) -> truthy` halts the episode before the action executes."""
    render: bool = False
    """Keep RGB frames of the full grid (for pictures)."""
    progress: bool = False
    """Show a tqdm bar over finished episodes."""
    sample_seed: int = 0
    """Seeds each episode's action-sampling stream together with its env seed."""
    max_steps: int | None = None
    """Override the level's own step limit (None keeps it; tests use short ones)."""
    keep_observations: bool = False
    """Keep each executed step's observation (image codes, direction) in the record, to
    turn the agent's own trajectories into training data (see babyai.training.dagger)."""
    bot_action_share: float = 0.0
    """DAgger's beta: at each step the bot's suggested action executes instead of the
    agent's with this probability (needs `bot_thoughts`; steps after the bot gave up are
    the agent's). Counted in `EpisodeRecord.bot_steps`."""
    timings: dict[str, float] | None = None
    """If given, wall seconds are added per section ("env reset", "env step", "render",
    "bot", "model", "decode+sample"), for benchmarks."""

    def __post_init__(self) -> None:
        if self.thought_ablation not in THOUGHT_ABLATIONS:
            raise UserError(f"unknown thought ablation {self.thought_ablation!r}; "
                            f"choose from {', '.join(THOUGHT_ABLATIONS)}")
        if not 0.0 <= self.bot_action_share <= 1.0:
            raise UserError(f"bot_action_share must be in [0, 1], got {self.bot_action_share}")
        if not 0.0 <= self.oracle_share <= 1.0:
            raise UserError(f"oracle_share must be in [0, 1], got {self.oracle_share}")
        if ((self.oracle_share < 1.0 or self.oracle_families)
                and self.thought_ablation != "oracle"):
            raise UserError("oracle_share below 1 and oracle_families need "
                            "thought_ablation='oracle'")
        unknown = sorted(set(self.oracle_families) - set(FAMILY_NAMES))
        if unknown:
            raise UserError(f"unknown thought families {', '.join(unknown)}; available: "
                            f"{', '.join(FAMILY_NAMES)}")
        if self.bot_action_share > 0 and not self.bot_thoughts:
            raise UserError("bot_action_share needs bot_thoughts=True: the bot must be asked")

    @property
    def oracle_thoughts(self) -> bool:
        return self.thought_ablation == "oracle"


def run_episodes(agent: Any, vocab: Vocabulary, env_name: str, seeds: Sequence[int],
                 options: RolloutOptions | None = None, *,
                 device: Any = None) -> list[EpisodeRecord]:
    """Evaluate `agent` on one episode per seed, stepping up to `options.max_batch` envs together.

    Args:
        agent: a TC or BC `babyai.agent.model.Agent` (its train/eval mode is restored afterwards).
        vocab: the agent's frozen vocabulary (missions are encoded with it, thoughts decoded).
        env_name: a BabyAI level id.
        seeds: environment seeds, one episode each; records come back in this order.
        options: how to play (see :class:`RolloutOptions`; default: sampled actions).
        device: where the model runs (default: where its parameters are).
    """
    options = options or RolloutOptions()
    argmax, max_batch, oracle_thoughts = options.argmax, options.max_batch, options.oracle_thoughts
    bot_thoughts, intervention, render = options.bot_thoughts, options.intervention, options.render
    progress, sample_seed, max_steps = options.progress, options.sample_seed, options.max_steps
    timings, keep_observations = options.timings, options.keep_observations
    bot_share = options.bot_action_share
    if max_batch <= 0:
        raise ValueError("max_batch must be positive")
    use_thoughts = bool(agent.config.use_thoughts)
    ablation = options.thought_ablation
    if ablation != "none" and not use_thoughts:
        raise UserError(f"the thought ablation {ablation!r} needs a TC checkpoint: "
                        "a BC agent reads no thoughts")
    policy_thought = ablation if ablation in ("zeroed", "shuffled") else "in_use"
    if intervention is not None and not use_thoughts:
        raise UserError("an intervention on thoughts needs a TC checkpoint: a BC agent has none")
    if device is None:
        device = next(agent.parameters()).device
    with_bot = oracle_thoughts or bot_thoughts
    pending = deque(enumerate(seeds))
    records: list[EpisodeRecord | None] = [None] * len(pending)
    batch = _Batch()
    clock = _Clock(timings)
    bar = tqdm(total=len(records), desc=f"eval {env_name}", unit="ep", disable=not progress,
               leave=False)

    def finish(slot: _Slot) -> None:
        records[slot.index] = slot.record
        slot.close()
        bar.update(1)

    was_training = agent.training
    agent.eval()
    try:
        with torch.no_grad():
            while pending or batch.slots:
                # Refill the batch; new rows start from fresh memory.
                fresh: list[_Slot] = []
                while pending and len(batch.slots) + len(fresh) < max_batch:
                    index, seed = pending.popleft()
                    with clock.section("env reset"):
                        fresh.append(_Slot(index, seed, env_name, render=render,
                                           with_bot=with_bot, sample_seed=sample_seed,
                                           max_steps=max_steps, clock=clock,
                                           keep_observations=keep_observations))
                if fresh:
                    with clock.section("model"):
                        batch.add(fresh, agent, vocab, device)

                slots = batch.slots
                asked = [False] * len(slots)
                handed = [False] * len(slots)  # rows whose lower level reads the bot's thought
                if with_bot:
                    with clock.section("bot"):
                        asked = [slot.ask_bot() for slot in slots]
                with clock.section("model"):
                    images = torch.from_numpy(np.stack([slot.obs["image"] for slot in slots]))
                    images = images.to(device=device, dtype=torch.long)
                    target, forced = None, False
                    if oracle_thoughts:
                        # Rows whose bot gave up, or whose subgoal was not handed over,
                        # read their own thought (per-row forcing).
                        handed = [ok and slot.hand_over(options.oracle_share,
                                                        options.oracle_families)
                                  for slot, ok in zip(slots, asked)]
                        target = pad_tokens([vocab.encode_thought(slot.bot_thought) if ok else []
                                             for slot, ok in zip(slots, handed)], device)
                        forced = True if all(handed) else torch.tensor(handed, device=device)
                    out = agent(images, batch.mission, batch.memory, thought_target=target,
                                teacher_forcing=forced, with_thought_logits=False,
                                policy_thought=policy_thought)
                    batch.memory = out.memory
                with clock.section("decode+sample"):
                    actions = _choose_actions(out.action_logits, slots, argmax)
                    if bot_share > 0:
                        actions = [_mix(slot, action, ok, bot_share)
                                   for slot, action, ok in zip(slots, actions, asked)]
                    thoughts = None
                    if use_thoughts:
                        own = ([vocab.decode(row) for row in out.thought_tokens.tolist()]
                               if out.thought_tokens is not None else [""] * len(slots))
                        thoughts = [slot.bot_thought if ok else mine
                                    for slot, ok, mine in zip(slots, handed, own)]

                keep: list[int] = []
                for row, (slot, action) in enumerate(zip(slots, actions)):
                    done = False
                    if thoughts is not None:
                        slot.record.thoughts.append(thoughts[row])
                        slot.record.oracle_steps += int(handed[row])
                        reason = intervention(thoughts[row]) if intervention else None
                        if reason:
                            slot.halt(slot.record.length, reason)
                            done = True
                    if not done:
                        done = slot.step(int(action))
                    if done:
                        finish(slot)
                    else:
                        keep.append(row)
                batch.keep(keep, device)
    finally:
        agent.train(was_training)
        bar.close()
        for slot in batch.slots:
            slot.close()
    return [record for record in records if record is not None]

