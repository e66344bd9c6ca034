"""One BPTT window of a batch: the agent run once per step, on the rows still active.

With teacher forcing, the window's distinct thoughts are encoded once and gathered per step
(the same features as encoding every step's thought, for a fraction of the BiGRU work).

Batches are time-major and sorted longest first, so the valid rows of every step are a
prefix of the batch: each step runs the agent on `window.active[t]` rows only, the memory
is cut to those rows as episodes end and reset where an episode starts.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from babyai.agent.model import Agent, Memory, TextEncoding
from babyai.data.batch import Window
from babyai.training.binding import BindingTargets
from babyai.training.counterfactual import ThoughtSwap


class WindowOutput(NamedTuple):
    """The valid steps of one window, flattened time-major (step t's active rows, then t+1's)."""

    action_logits: torch.Tensor  # [N, A]
    actions: torch.Tensor  # [N]
    thought_logits: torch.Tensor | None  # [N, Lt-1, V] (None unless asked for)
    thought_targets: torch.Tensor | None  # [N, Lt]
    upper_h: torch.Tensor | None  # [N, memory_dim] new upper memories (TC only)
    upper_c: torch.Tensor | None
    missions: TextEncoding | None = None  # the window's encoded missions, [B, L, instr_dim]
    mission_rows: torch.Tensor | None = None  # [N] row of `missions` of every step
    """`missions` and `mission_rows` are set only for a thought decoder that reads the
    mission: `missions.index(mission_rows[k])` is step k's mission."""
    thought_weights: torch.Tensor | None = None  # [N] thought-loss weight of every step
    counterfactual_logits: torch.Tensor | None = None
    """[K, A] the lower level's action logits at the window's pick-up steps read with a
    thought that names another object (only when asked for with `swap`)."""
    binding_logits: torch.Tensor | None = None
    """[M] the binding head's logits at the window's binding steps, read with their own
    thought and with the swapped one (only when asked for with `binding`)."""
    binding_labels: torch.Tensor | None = None
    """[M] their targets: 1 where the object in front is the one the thought read names."""


def run_window(agent: Agent, window: Window, missions: torch.Tensor, memory: Memory,
               teacher_forcing: bool, with_thought_logits: bool = True,
               history_thought: str = "in_use",
               swap: ThoughtSwap | None = None, pickup_term: bool = True,
               binding: BindingTargets | None = None,
               binding_swap: str = "colour") -> tuple[WindowOutput, Memory]:
    """Run the agent once per step over one window, on the active rows only.

    Args:
        missions: [B, L] mission tokens of the batch (encoded here, inside the window's graph).
        memory: the memory carried in, one row per row active at the window's first step.
        history_thought: what the thought history reads (see :meth:`Agent.forward`).
        swap: with teacher forcing, how a step is read a second time with a counterfactual
            thought (see babyai.training.counterfactual); `pickup_term` reads each pick-up
            step so (the unlikelihood term's rows), `binding` each binding step
            (babyai.training.binding) and gives the binding head's logits and targets;
            `binding_swap="either"` then changes the colour, the kind or both.
    Returns the window's outputs and the memory after its last step (rows still active).
    """
    rows = window.active[0]
    memory = memory.index(slice(0, rows))
    if window.mission_index is None:  # per-episode layout: row b's mission is mission b
        mission = all_missions = agent.encode_missions(missions[:rows])
    else:  # lanes: the batch's missions encoded once, gathered per step
        all_missions = agent.encode_missions(missions)
    logits, actions, targets, upper_h, upper_c, mission_rows = [], [], [], [], [], []
    weights, counterfactual, binding_logits, binding_labels = [], [], [], []
    reads_mission = agent.thought_decoder_reads_mission
    use_thoughts = agent.config.use_thoughts
    swap = swap if (swap is not None and use_thoughts and teacher_forcing) else None
    table = None
    if use_thoughts and teacher_forcing:
        # each distinct thought of the window through the BiGRU once, gathered per step
        table = agent.encode_thought_table(window.thought_table, window.thought_index)
    for t, active in enumerate(window.active):
        if active == 0:
            break
        if active < rows:
            memory = memory.index(slice(0, active))
            if window.mission_index is None:
                mission = mission.index(slice(0, active))
            rows = active
        if window.mission_index is not None:
            mission = all_missions.index(window.mission_index[t, :active])
        if window.has_start[t]:
            memory = memory.mask(~window.starts[t, :active])
        target = window.thoughts[t, :active] if use_thoughts else None
        encoding = table.index((t, slice(0, active))) if table is not None else None
        images = window.images[t, :active]
        second_reading = picked = bound = None
        if swap is not None:
            picked = (swap.select(target, window.actions[t, :active]) if pickup_term
                      else torch.zeros(active, dtype=torch.bool, device=target.device))
            bound = (binding.select(images, target) if binding is not None
                     else torch.zeros_like(picked))
            reread = (picked | bound).nonzero().squeeze(1)
            if len(reread):
                either = binding is not None and binding_swap == "either"
                second_reading = (reread, swap.swap_either(target[reread]) if either
                                  else swap.swap(target[reread]))
                picked, bound = picked[reread], bound[reread]
        out = agent(images, mission, memory, thought_target=target,
                    teacher_forcing=teacher_forcing, with_thought_logits=False,
                    thought_encoding=encoding, history_thought=history_thought,
                    counterfactual=second_reading)
        if second_reading is not None:
            reread, swapped = second_reading
            if pickup_term:
                counterfactual.append(out.counterfactual_logits[picked])
            if binding is not None:
                own = reread[bound]
                binding_logits += [agent.binding_logits(out.memory.lower_h[own]),
                                   agent.binding_logits(out.counterfactual_lower_h[bound])]
                binding_labels += [binding.labels(images[own], target[own]),
                                   binding.labels(images[own], swapped[bound])]
        memory = out.memory
        logits.append(out.action_logits)
        actions.append(window.actions[t, :active])
        if use_thoughts:
            targets.append(target)
            upper_h.append(memory.upper_h)
            upper_c.append(memory.upper_c)
            if window.thought_weights is not None:
                weights.append(window.thought_weights[t, :active])
        if reads_mission:
            mission_rows.append(torch.arange(active, device=window.actions.device)
                                if window.mission_index is None
                                else window.mission_index[t, :active])
    thought_logits = thought_targets = all_h = all_c = None
    decoder_missions = all_missions if reads_mission else None
    rows_of_steps = torch.cat(mission_rows) if reads_mission else None
    if use_thoughts:
        thought_targets = torch.cat(targets)
        all_h, all_c = torch.cat(upper_h), torch.cat(upper_c)
        if with_thought_logits:
            step_missions = decoder_missions.index(rows_of_steps) if reads_mission else None
            thought_logits = agent.thought_logits(all_h, all_c, thought_targets, step_missions)
    counterfactual_logits = torch.cat(counterfactual) if counterfactual else None
    return WindowOutput(torch.cat(logits), torch.cat(actions), thought_logits,
                        thought_targets, all_h, all_c, decoder_missions, rows_of_steps,
                        torch.cat(weights) if weights else None, counterfactual_logits,
                        torch.cat(binding_logits) if binding_logits else None,
                        torch.cat(binding_labels) if binding_labels else None), memory
