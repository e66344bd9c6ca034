"""Environments for fine-tuning: episodes on chosen seeds, stepped in-process or in workers.

Each environment draws the seed of every new episode itself, from its own random stream
(`numpy` generator seeded by the run seed and the environment's index): uniformly from the
training seeds of a level-set bin, or from a fresh seed range when fine-tuning on a whole
level. Its state is plain data: the stream, the episode's seed and the actions taken so
far; restoring it rebuilds the world (and the bot, which does not pickle) by replaying them,
which is how a checkpoint resumes collection exactly where it stopped (checkpoints hold no
pickled objects and load with torch's weights_only=True).

Two steppers share one interface: :class:`InProcessEnvs` and :class:`WorkerEnvs` (our own
pipe workers, each holding a contiguous share of the environments and stepping them in one
message per step). `scripts/bench_rl.py` measured both against gymnasium's AsyncVectorEnv.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from babyai.common.seeds import RL_TRAIN_SPAN, RL_TRAIN_START
from babyai.env.bot import BotFailure, ThinkingBot
from babyai.env.envs import make_env

logger = logging.getLogger(__name__)



@dataclass
class Observation:
    """What the agent sees at one step (plus the bot's thought when one is asked for)."""

    image: np.ndarray
    mission: str
    bot_thought: str | None = None
    """None: no bot; "": the bot gave up on this episode (no thought loss there)."""


@dataclass
class StepResult:
    reward: float
    done: bool
    obs: Observation
    """The next observation: the first of a new episode when `done`."""
    episode: tuple[float, int, int] | None = None
    """(return, length, seed) of the episode that just ended."""


class SeededEpisodes:
    """One environment whose episodes start on seeds it draws from its own stream."""

    def __init__(self, env_name: str, seeds: Sequence[int] | None, stream_seed: Sequence[int],
                 with_bot: bool = False, max_steps: int | None = None) -> None:
        options = {"max_steps": max_steps} if max_steps is not None else {}
        self.env_name, self.max_steps = env_name, max_steps
        self.env = make_env(env_name, **options)
        self.seeds = list(seeds) if seeds is not None else None
        self.actions: list[int] = []
        self.rng = np.random.default_rng(list(stream_seed))
        self.with_bot = with_bot
        self.bot: ThinkingBot | None = None
        self.seed = -1
        self.episode_return, self.length = 0.0, 0
        self.obs: Observation | None = None

    def _draw_seed(self) -> int:
        if self.seeds is not None:
            return int(self.seeds[int(self.rng.integers(len(self.seeds)))])
        return RL_TRAIN_START + int(self.rng.integers(RL_TRAIN_SPAN))

    def reset(self) -> Observation:
        self.seed = self._draw_seed()
        return self._start()

    def _start(self) -> Observation:
        raw, _ = self.env.reset(seed=self.seed)
        self.episode_return, self.length, self.actions = 0.0, 0, []
        self.bot = ThinkingBot(self.env) if self.with_bot else None
        self.obs = self._observe(raw, taken=None)
        return self.obs

    def _observe(self, raw: dict, taken: int | None) -> Observation:
        thought = None
        if self.with_bot:
            thought = ""
            if self.bot is not None:
                # Where the agent did not follow the bot, the bot plans afresh from here
                # instead of planning to undo the agent's action.
                try:
                    thought = self.bot.act(taken, replan=True).thought
                except BotFailure as error:
                    logger.debug("seed %d: bot gave up at step %d: %s", self.seed, self.length, error)
                    self.bot = None
        return Observation(raw["image"], raw["mission"], thought)

    def step(self, action: int) -> StepResult:
        raw, reward, terminated, truncated, _ = self.env.step(int(action))
        self.episode_return += float(reward)
        self.length += 1
        self.actions.append(int(action))
        if terminated or truncated:
            episode = (self.episode_return, self.length, self.seed)
            return StepResult(float(reward), True, self.reset(), episode)
        self.obs = self._observe(raw, taken=int(action))
        return StepResult(float(reward), False, self.obs)

    def close(self) -> None:
        self.env.close()

    def __getstate__(self) -> dict:
        return {"env_name": self.env_name, "seeds": self.seeds, "rng": self.rng.bit_generator.state,
                "with_bot": self.with_bot, "max_steps": self.max_steps, "seed": self.seed,
                "actions": list(self.actions)}

    @classmethod
    def from_state(cls, state: dict) -> "SeededEpisodes":
        """Rebuild from :meth:`__getstate__`'s plain data (by replaying the episode)."""
        episodes = cls.__new__(cls)
        episodes.__setstate__(state)
        return episodes

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["env_name"], state["seeds"], [0], state["with_bot"], state["max_steps"])
        self.rng.bit_generator.state = state["rng"]
        self.seed = state["seed"]
        if self.seed < 0:  # saved before its first episode
            return
        self.obs = self._start()
        for action in state["actions"]:
            if self.step(action).done:
                raise ValueError(f"replaying seed {self.seed} ended its episode early")


def make_episodes(env_name: str, seeds: Sequence[int] | None, count: int, run_seed: int,
                  with_bot: bool = False, max_steps: int | None = None) -> list[SeededEpisodes]:
    """`count` environments; environment i draws its seeds from the stream (run_seed, i)."""
    return [SeededEpisodes(env_name, seeds, (run_seed, index), with_bot, max_steps)
            for index in range(count)]


class InProcessEnvs:
    """All environments stepped one after the other in this process."""

    def __init__(self, envs: list[SeededEpisodes]) -> None:
        self.envs = envs

    def __len__(self) -> int:
        return len(self.envs)

    def reset(self) -> list[Observation]:
        return [env.reset() for env in self.envs]

    def step(self, actions: Sequence[int]) -> list[StepResult]:
        return [env.step(action) for env, action in zip(self.envs, actions)]

    def get_state(self) -> list[dict]:
        """Plain data (checkpoints load with torch's weights_only=True, never unpickling code)."""
        return [env.__getstate__() for env in self.envs]

    def set_state(self, state: list[dict]) -> None:
        if not isinstance(state, list) or not all(isinstance(item, dict) for item in state):
            raise ValueError("saved environment state holds something else")
        for env in self.envs:
            env.close()
        self.envs = [SeededEpisodes.from_state(item) for item in state]

    def current(self) -> list[Observation]:
        return [env.obs for env in self.envs]

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _worker(connection: Any, envs: list[SeededEpisodes]) -> None:
    """Serve step/reset/state requests for a share of the environments until told to stop."""
    local = InProcessEnvs(envs)
    try:
        while True:
            command, payload = connection.recv()
            if command == "step":
                connection.send(("ok", local.step(payload)))
            elif command == "reset":
                connection.send(("ok", local.reset()))
            elif command == "current":
                connection.send(("ok", local.current()))
            elif command == "get_state":
                connection.send(("ok", local.get_state()))
            elif command == "set_state":
                local.set_state(payload)
                connection.send(("ok", None))
            elif command == "close":
                local.close()
                connection.send(("ok", None))
                return
            else:
                connection.send(("error", f"unknown command {command!r}"))
    except Exception as error:  # reported to the parent, which raises it
        connection.send(("error", f"{type(error).__name__}: {error}"))
        raise


class WorkerEnvs:
    """The environments split into `workers` contiguous shares, one process each."""

    def __init__(self, envs: list[SeededEpisodes], workers: int) -> None:
        workers = max(1, min(workers, len(envs)))
        bounds = np.linspace(0, len(envs), workers + 1).astype(int)
        self.shares = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
        self.count = len(envs)
        context = mp.get_context("fork")
        self.connections, self.processes = [], []
        for start, stop in self.shares:
            parent, child = context.Pipe()
            process = context.Process(target=_worker, args=(child, envs[start:stop]), daemon=True)
            process.start()
            child.close()
            self.connections.append(parent)
            self.processes.append(process)
        for env in envs:  # the workers own their copies now
            env.close()

    def __len__(self) -> int:
        return self.count

    def _ask(self, command: str, payloads: Sequence[Any] | None = None) -> list[Any]:
        for index, connection in enumerate(self.connections):
            connection.send((command, None if payloads is None else payloads[index]))
        answers = []
        for connection in self.connections:
            status, answer = connection.recv()
            if status != "ok":
                raise RuntimeError(f"environment worker failed: {answer}")
            answers.append(answer)
        return answers

    def reset(self) -> list[Observation]:
        return [obs for share in self._ask("reset") for obs in share]

    def step(self, actions: Sequence[int]) -> list[StepResult]:
        actions = list(actions)
        shares = [actions[start:stop] for start, stop in self.shares]
        return [result for share in self._ask("step", shares) for result in share]

    def current(self) -> list[Observation]:
        return [obs for share in self._ask("current") for obs in share]

    def get_state(self) -> list[dict]:
        return [env for share in self._ask("get_state") for env in share]

    def set_state(self, state: list[dict]) -> None:
        if not isinstance(state, list) or len(state) != self.count:
            raise ValueError(f"saved state does not hold {self.count} environments")
        self._ask("set_state", [state[start:stop] for start, stop in self.shares])

    def close(self) -> None:
        try:
            self._ask("close")
        finally:
            for process in self.processes:
                process.join(timeout=5)


def make_vector_envs(envs: list[SeededEpisodes], workers: int) -> InProcessEnvs | WorkerEnvs:
    """`workers` <= 1 steps in-process; more starts that many worker processes."""
    return InProcessEnvs(envs) if workers <= 1 else WorkerEnvs(envs, workers)
