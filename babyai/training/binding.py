"""Binding: teaching the lower level whether the object in front is the one its thought names.

The object-reading intervention (`tc-open-loop --object-reading`) shows that the lower
level presses pickup in front of the object its thought names exactly as often as when
the thought names another colour or kind: it reads which kind of thought is in force and
where it stands, not which object the words name. Neither an unlikelihood term on its
actions (`--counterfactual-coef`) nor reading the front cell (`--front-cell`) changed that.

`--binding-coef C` gives the lower level a supervised signal for the missing piece. Its
memory (what its actor reads) gets a one-logit head, trained with binary cross-entropy to
say whether the cell in front holds the object the thought in use names, by colour and
kind. The target is read off the step's image (minigrid's object and colour codes of the
front cell) and the thought's words; it is asked at teacher-forced steps whose thought
acts on an object in front (pickup, remove, open, unlock, close, go to) and names both its
colour and its kind, while an object (key, ball, box or door) is in front. Each such step
is read a second time with the thought changed (:class:`ThoughtSwap
<babyai.training.counterfactual.ThoughtSwap>`; `--binding-swap colour`: always its colour,
half of the time also its kind; `either`: its colour, its kind or both, one chance in three
each), so the same state comes with the answer "yes" and "no": only the words tell them
apart. The loss adds
C x sum(BCE) / (valid steps of the batch), as the other terms.

What it does (docs/experiments.md, "Tried: a binding term"): the lower level learns to
read the colour its thought names, and then follows it, also where the agent's own
thought names the wrong object.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX
from torch import Tensor

from babyai.agent.layers import FRONT_CELL
from babyai.data.vocab import UNK, Vocabulary
from babyai.env.thoughts import PICKABLE

BINDING_SWAPS = ("colour", "either")
"""How the second reading changes a thought (see the module docstring)."""
KINDS = (*PICKABLE, "door")
"""The kinds of object a thought can name and the agent can face."""
ACTING_WORDS = ("pickup", "remove", "open", "unlock", "close", "go")
"""First words of the thoughts about the object the agent is to face (drop thoughts name
what it carries instead)."""
NO_CODE = -1


@dataclass(frozen=True)
class BindingTargets:
    """For each word id of a vocabulary, the minigrid colour / object code it names."""

    colour_code: Tensor
    """[V] minigrid colour index of each colour word, -1 for other words."""
    kind_code: Tensor
    """[V] minigrid object index of each kind word (key, ball, box, door), -1 otherwise."""
    acting: Tensor
    """[V] bool: the word starts a thought about the object in front."""

    @classmethod
    def from_vocab(cls, vocab: Vocabulary) -> "BindingTargets":
        size = len(vocab)
        colour = torch.full((size,), NO_CODE, dtype=torch.long)
        kind = torch.full((size,), NO_CODE, dtype=torch.long)
        acting = torch.zeros(size, dtype=torch.bool)
        for table, words, codes in ((colour, COLOR_TO_IDX, COLOR_TO_IDX),
                                    (kind, KINDS, OBJECT_TO_IDX)):
            for word in words:
                index = vocab.encode(word)[0]
                if index != UNK:
                    table[index] = codes[word]
        for word in ACTING_WORDS:
            index = vocab.encode(word)[0]
            if index != UNK:
                acting[index] = True
        if not bool((colour >= 0).any()) or not bool((kind >= 0).any()):
            raise ValueError("the vocabulary names no colour or no kind of object: no binding "
                             "target can be read")
        return cls(colour, kind, acting)

    def to(self, device: torch.device | str) -> "BindingTargets":
        return BindingTargets(self.colour_code.to(device), self.kind_code.to(device),
                              self.acting.to(device))

    def named(self, thoughts: Tensor) -> tuple[Tensor, Tensor]:
        """The colour and kind codes [N] that the thoughts (`<s> words </s>`, [N, Lt]) name,
        -1 where a thought names none (a thought names at most one of each)."""
        return (self.colour_code[thoughts].max(dim=1).values,
                self.kind_code[thoughts].max(dim=1).values)

    def select(self, images: Tensor, thoughts: Tensor) -> Tensor:
        """[N] bool: steps whose thought is about an object in front and names its colour
        and kind, with a key, ball, box or door in front ([N, 7, 7, 3] images)."""
        first = thoughts[:, 1] if thoughts.shape[1] > 1 else thoughts[:, 0]
        colour, kind = self.named(thoughts)
        front = front_object(images)
        facing = torch.isin(front, self.kind_code[self.kind_code >= 0])
        return self.acting[first] & (colour >= 0) & (kind >= 0) & facing

    def labels(self, images: Tensor, thoughts: Tensor) -> Tensor:
        """[N] float: 1 where the cell in front holds the object the thought names."""
        colour, kind = self.named(thoughts)
        x, y = FRONT_CELL
        front_colour = images[:, x, y, 1].long()
        return ((front_object(images) == kind) & (front_colour == colour)).float()


def front_object(images: Tensor) -> Tensor:
    """[N] minigrid object code of the cell in front of the agent."""
    x, y = FRONT_CELL
    return images[:, x, y, 0].long()


def binding_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Per row, the binary cross-entropy of the binding logit against its label."""
    return F.binary_cross_entropy_with_logits(logits.float(), labels, reduction="none")
