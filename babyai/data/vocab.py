"""A frozen word vocabulary shared by missions and thoughts.

Built once from the training demonstrations and saved with the model. Unknown words at
inference map to `<unk>`: the vocabulary never grows after it is built.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Sequence

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")
MAX_THOUGHT_TOKENS = 15
"""The longest thought the decoder emits (words plus the end token)."""

_WORD = re.compile(r"[a-z]+")


def tokenize(text: str) -> list[str]:
    """Lower-case words; punctuation (e.g. the commas of missions) is dropped."""
    return _WORD.findall(text.lower())


class Vocabulary:
    """Word <-> index mapping with fixed special tokens (pad 0, unk 1, start 2, end 3)."""

    def __init__(self, words: Sequence[str]) -> None:
        self.itos: list[str] = list(SPECIALS) + [w for w in words if w not in SPECIALS]
        self.stoi: dict[str, int] = {word: index for index, word in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("duplicate words in vocabulary")

    @classmethod
    def build(cls, texts: Iterable[str]) -> "Vocabulary":
        """Build from missions and thoughts; words sorted by frequency then alphabetically."""
        counts = Counter(word for text in texts for word in tokenize(text))
        return cls(sorted(counts, key=lambda word: (-counts[word], word)))

    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.itos == other.itos

    def encode(self, text: str) -> list[int]:
        """Word indices of a mission (no start/end tokens)."""
        return [self.stoi.get(word, UNK) for word in tokenize(text)]

    def encode_thought(self, text: str) -> list[int]:
        """`<s> words </s>`, truncated so the words plus `</s>` fit the decoder's limit."""
        words = self.encode(text)[: MAX_THOUGHT_TOKENS - 1]
        return [BOS, *words, EOS]

    def decode(self, indices: Iterable[int]) -> str:
        """Words of a token sequence, stopping at `</s>`, skipping pad and start."""
        words = []
        for index in indices:
            index = int(index)
            if index == EOS:
                break
            if index in (PAD, BOS):
                continue
            words.append(self.itos[index] if 0 <= index < len(self.itos) else SPECIALS[UNK])
        return " ".join(words)

    def to_list(self) -> list[str]:
        """Serializable form (saved in checkpoints)."""
        return list(self.itos)

    @classmethod
    def from_list(cls, itos: Sequence[str]) -> "Vocabulary":
        if tuple(itos[: len(SPECIALS)]) != SPECIALS:
            raise ValueError("not a vocabulary: special tokens missing")
        return cls(itos[len(SPECIALS):])
