"""Collection: P environments stepped together for T steps, one batched model call per step.

The agent plays as at evaluation (eval mode: batch-norm running statistics, no dropout; the
upper level decodes its thought greedily) and samples its action. Every step records what
the PPO update needs to replay it exactly: the observation, the mission, the thought the
lower level read, the recurrent memory the step started from, the action with its
log-probability and the value. The update re-runs the lower level on the *recorded*
thoughts, so before the first gradient step it reproduces collection's probabilities
exactly (ratio 1), whatever the upper level would say after an update.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from babyai.agent.model import Agent, Memory
from babyai.agent.rollout import pad_tokens
from babyai.data.vocab import BOS, MAX_THOUGHT_TOKENS, PAD, Vocabulary
from babyai.rl.envs import InProcessEnvs, Observation, WorkerEnvs
from babyai.rl.ppo import compute_gae

THOUGHT_WIDTH = MAX_THOUGHT_TOKENS + 1
"""Columns of a recorded thought: BOS, up to 15 words and EOS, padded."""


@dataclass
class Experience:
    """One collection, time-major [T, P, ...]."""

    images: Tensor  # uint8 [T, P, 7, 7, 3]
    missions: Tensor  # long [T, P, L]
    thoughts: Tensor | None  # long [T, P, 16]: what the lower level read (TC only)
    bot_thoughts: Tensor | None  # long [T, P, 16]: the bot's thought, PAD rows where none
    actions: Tensor  # long [T, P]
    log_probs: Tensor  # [T, P]
    values: Tensor  # [T, P]
    rewards: Tensor  # [T, P]
    dones: Tensor  # [T, P]: the episode ended at this step
    keep: Tensor  # [T, P]: 0 where an episode starts (memory reset before the step)
    memories: Memory  # each field [T, P, M]: the memory the step started from (after reset)
    advantages: Tensor = field(default=None)  # type: ignore[assignment]
    returns: Tensor = field(default=None)  # type: ignore[assignment]

    @property
    def steps(self) -> int:
        return int(self.actions.shape[0])

    @property
    def procs(self) -> int:
        return int(self.actions.shape[1])


def _pad_rows(rows: list[list[int]], width: int) -> Tensor:
    out = torch.full((len(rows), width), PAD, dtype=torch.long)
    for index, row in enumerate(rows):
        out[index, : len(row)] = torch.as_tensor(row[:width], dtype=torch.long)
    return out


class Collector:
    """Steps the environments with the agent and keeps the state between collections."""

    def __init__(self, agent: Agent, vocab: Vocabulary, envs: InProcessEnvs | WorkerEnvs,
                 sample_seed: int, device: Any = "cpu") -> None:
        self.agent, self.vocab, self.envs, self.device = agent, vocab, envs, torch.device(device)
        self.use_thoughts = bool(agent.config.use_thoughts)
        self.generator = torch.Generator().manual_seed(int(sample_seed))
        self.obs: list[Observation] = envs.reset()
        self.memory = agent.initial_memory(len(envs), self.device)
        self.keep = torch.zeros(len(envs), device=self.device)  # every env starts an episode
        self._encoded: tuple[Tensor, Any] | None = None

    # --------------------------------------------------------------- state for checkpoints

    def state_dict(self) -> dict:
        obs = [(torch.from_numpy(np.asarray(o.image)), o.mission, o.bot_thought) for o in self.obs]
        return {"envs": self.envs.get_state(), "obs": obs,
                "memory": [m.cpu() for m in self.memory], "keep": self.keep.cpu(),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.envs.set_state(state["envs"])
        self.obs = [Observation(image.numpy(), mission, thought)
                    for image, mission, thought in state["obs"]]
        self.memory = Memory(*(m.to(self.device) for m in state["memory"]))
        self.keep = state["keep"].to(self.device)
        self.generator.set_state(state["generator"])

    # --------------------------------------------------------------- collection

    def _step_inputs(self) -> tuple[Tensor, Tensor]:
        images = torch.from_numpy(np.stack([obs.image for obs in self.obs]))
        missions = pad_tokens([self.vocab.encode(obs.mission) for obs in self.obs])
        return images, missions

    def _act(self, images: Tensor, missions: Tensor, memory: Memory):
        # Missions change only when an episode ends: re-encode only then (the weights do not
        # change during a collection, and `collect` forgets the cache when it starts).
        if self._encoded is None or not torch.equal(self._encoded[0], missions):
            self._encoded = (missions, self.agent.encode_missions(missions.to(self.device)))
        return self.agent(images.to(self.device, torch.long), self._encoded[1], memory)

    @torch.no_grad()
    def collect(self, steps: int, discount: float, gae_lambda: float,
                ) -> tuple[Experience, list[tuple[float, int, int]]]:
        """Play `steps` steps in every environment; returns the experience (with advantages)
        and (return, length, seed) of every episode that ended."""
        was_training = self.agent.training
        self.agent.eval()
        self._encoded = None
        procs = len(self.envs)
        images, missions, thoughts, bot_rows = [], [], [], []
        actions, log_probs, values, rewards, dones, keeps, memories = [], [], [], [], [], [], []
        finished: list[tuple[float, int, int]] = []
        with_bot = self.obs[0].bot_thought is not None
        try:
            for _ in range(steps):
                memory = self.memory.mask(self.keep)
                step_images, step_missions = self._step_inputs()
                out = self._act(step_images, step_missions, memory)
                probs = torch.softmax(out.action_logits.float(), dim=-1).cpu()
                action = torch.multinomial(probs, 1, generator=self.generator).squeeze(1)
                log_prob = torch.log_softmax(out.action_logits.float(), -1).cpu().gather(
                    1, action.unsqueeze(1)).squeeze(1)
                if self.use_thoughts:
                    generated = out.thought_tokens.cpu()
                    start = torch.full((procs, 1), BOS, dtype=torch.long)
                    row = torch.full((procs, THOUGHT_WIDTH), PAD, dtype=torch.long)
                    row[:, : generated.shape[1] + 1] = torch.cat([start, generated], dim=1)
                    thoughts.append(row)
                if with_bot:
                    bot_rows.append(_pad_rows([self.vocab.encode_thought(obs.bot_thought)
                                               if obs.bot_thought else []
                                               for obs in self.obs], THOUGHT_WIDTH))
                results = self.envs.step(action.tolist())
                images.append(step_images)
                missions.append(step_missions)
                memories.append(Memory(*(m.cpu() for m in memory)))
                keeps.append(self.keep.cpu())
                actions.append(action)
                log_probs.append(log_prob)
                values.append(out.value.float().cpu())
                rewards.append(torch.tensor([r.reward for r in results]))
                done = torch.tensor([float(r.done) for r in results])
                dones.append(done)
                finished += [r.episode for r in results if r.episode is not None]
                self.obs = [r.obs for r in results]
                self.memory = out.memory
                self.keep = (1.0 - done).to(self.device)
            step_images, step_missions = self._step_inputs()
            last_value = self._act(step_images, step_missions,
                                   self.memory.mask(self.keep)).value.float().cpu()
        finally:
            self.agent.train(was_training)
        width = max(m.shape[1] for m in missions)
        padded = [torch.nn.functional.pad(m, (0, width - m.shape[1]), value=PAD) for m in missions]
        exp = Experience(
            images=torch.stack(images).to(torch.uint8), missions=torch.stack(padded),
            thoughts=torch.stack(thoughts) if thoughts else None,
            bot_thoughts=torch.stack(bot_rows) if bot_rows else None,
            actions=torch.stack(actions), log_probs=torch.stack(log_probs),
            values=torch.stack(values), rewards=torch.stack(rewards), dones=torch.stack(dones),
            keep=torch.stack(keeps),
            memories=Memory(*(torch.stack(fields) for fields in zip(*memories))))
        exp.advantages, exp.returns = compute_gae(exp.rewards, exp.values, exp.dones, last_value,
                                                  discount, gae_lambda)
        return exp, finished
