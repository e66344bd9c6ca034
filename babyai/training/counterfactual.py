"""Counterfactual thoughts: teaching the lower level to pick up only what its thought names.

In closed loop the lower level presses pickup in front of an object its thought does not
name about as often as in front of one it does (`tc-failure-modes`, pick-up
discrimination): it learnt "a pick-up thought and something in front -> pickup" and not
which object the words name. In the demonstrations the contrast is there but thin: the bot
faces an object other than the one it means to take on few steps, and there it never
presses pickup.

`--counterfactual-coef C` adds it at every teacher-forced step where the bot picks up
under a pick-up thought that names a colour ("pickup red ball to complete pickup mission",
"remove blocking object grey key"): the same state is read a second time by the lower
level with the thought's colour changed (and, half of the time, its kind of object among
key, ball and box), so the thought names an object that is not the one in front, and the
loss adds C x -log(1 - p(pickup)) for that reading (an unlikelihood term: what not to do
there, not which action to take instead, which the demonstrations do not say). The second
reading uses the step's memory and advances nothing; it runs in the same pass of the lower
level as the real rows, so its BatchNorm layers normalise both alike (a reading normalised
differently, e.g. with the running statistics, lets the network tell counterfactual from
real by the normalisation alone: a first version did, and learnt never to pick up at test
time, when every reading is normalised that way).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from minigrid.core.actions import Actions
from torch import Tensor

from babyai.data.vocab import UNK, Vocabulary
from babyai.env.thoughts import COLORS, PICKABLE

PICKUP = int(Actions.pickup)
PICKUP_WORDS = ("pickup", "remove")
"""First words of the thoughts that end in a pick-up ("pickup ...", "remove blocking object ...")."""


@dataclass(frozen=True)
class ThoughtSwap:
    """Word ids of a vocabulary that the swap reads and writes."""

    colors: Tensor
    kinds: Tensor
    pickup_words: Tensor

    @classmethod
    def from_vocab(cls, vocab: Vocabulary) -> "ThoughtSwap":
        def ids(words: tuple[str, ...]) -> Tensor:
            found = [vocab.encode(word)[0] for word in words]
            return torch.tensor([i for i in found if i != UNK], dtype=torch.long)
        swap = cls(ids(COLORS), ids(PICKABLE), ids(PICKUP_WORDS))
        if len(swap.colors) < 2:
            raise ValueError("the vocabulary names fewer than two colours: no counterfactual "
                             "thought can be made")
        return swap

    def to(self, device: torch.device | str) -> "ThoughtSwap":
        return ThoughtSwap(self.colors.to(device), self.kinds.to(device),
                           self.pickup_words.to(device))

    def select(self, thoughts: Tensor, actions: Tensor) -> Tensor:
        """[N] bool: steps whose action is pickup and whose thought (`<s> words </s>`,
        [N, Lt]) is a pick-up thought naming a colour."""
        first = thoughts[:, 1] if thoughts.shape[1] > 1 else thoughts[:, 0]
        named = torch.isin(thoughts, self.colors).any(dim=1)
        return (actions == PICKUP) & torch.isin(first, self.pickup_words) & named

    def swap(self, thoughts: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The thoughts with every colour word replaced by another colour, and in about half
        of the rows every kind word (key, ball, box) by another kind."""
        swapped = thoughts.clone()
        swapped = _replace(swapped, self.colors, torch.ones(len(thoughts), dtype=torch.bool,
                                                            device=thoughts.device), generator)
        if len(self.kinds) > 1:
            rows = torch.rand(len(thoughts), generator=generator, device=thoughts.device) < 0.5
            swapped = _replace(swapped, self.kinds, rows, generator)
        return swapped

    def swap_either(self, thoughts: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The thoughts with, per row and with one chance in three each, the colour, the kind
        of object, or both replaced (the colour in rows that name no kind). Why: when the
        colour always changes, telling the thoughts apart needs only the colour word, and
        the kind word goes unread (the binding term, babyai/training/binding.py)."""
        rows = len(thoughts)
        draw = torch.randint(0, 3, (rows,), generator=generator, device=thoughts.device)
        has_kind = torch.isin(thoughts, self.kinds).any(dim=1) & (len(self.kinds) > 1)
        kind = has_kind & (draw > 0)
        colour = ~has_kind | (draw != 1)
        swapped = _replace(thoughts.clone(), self.colors, colour, generator)
        return _replace(swapped, self.kinds, kind, generator) if len(self.kinds) > 1 else swapped


def _replace(tokens: Tensor, words: Tensor, rows: Tensor,
             generator: torch.Generator | None) -> Tensor:
    """In the rows `rows`, each token among `words` becomes another of `words` (one shift
    per row, so "red ... red" stays one colour)."""
    shift = torch.randint(1, len(words), (len(tokens), 1), generator=generator,
                          device=tokens.device)
    hit = (tokens[..., None] == words).long()  # [N, Lt, W]
    position = hit.argmax(dim=-1)
    present = hit.any(dim=-1) & rows[:, None]
    replaced = words[(position + shift) % len(words)]
    return torch.where(present, replaced, tokens)


def unlikelihood(logits: Tensor, action: int = PICKUP) -> Tensor:
    """Per row, -log(1 - p(action)) of the action distribution `logits` [K, A]."""
    log_probs = F.log_softmax(logits.float(), dim=-1)
    others = torch.cat([log_probs[:, :action], log_probs[:, action + 1:]], dim=1)
    return -torch.logsumexp(others, dim=1)
