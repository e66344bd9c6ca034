"""The building blocks of the agent: image encoder, token encoder, attentions, FiLM."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

IMAGE_CODE_RANGE = 16
"""Each of the three image channels (object, colour, state) takes values below this."""


class LowPrecisionConvs:
    """Mixin: the module's 3x3 convolutions may run in bfloat16 on the CPU.

    Why: on CPUs with native bfloat16 (AVX512-BF16/AMX) oneDNN runs these small
    convolutions several times faster than in float32, and they are most of a training
    step's arithmetic. Only the convolutions change precision (inputs and weights rounded
    to bfloat16, float32 accumulation); their outputs are cast back, so BatchNorm, FiLM and
    everything else stay float32. Off unless :func:`use_bf16_convolutions` turns it on.
    """

    conv_bf16: bool = False

    def _conv(self, conv: nn.Conv2d, x: Tensor) -> Tensor:
        if self.conv_bf16 and x.device.type == "cpu":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return conv(x).float()
        return conv(x)


def use_bf16_convolutions(model: nn.Module, enabled: bool) -> None:
    """Switch bfloat16 convolutions on or off in every layer of `model` that has them."""
    for module in model.modules():
        if isinstance(module, LowPrecisionConvs):
            module.conv_bf16 = enabled


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (oneDNN's own check)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


class ImageEncoder(LowPrecisionConvs, nn.Module):
    """Bag-of-words embedding of the three code channels, then two 3x3 conv layers."""

    def __init__(self, image_dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(3 * IMAGE_CODE_RANGE, image_dim)
        self.register_buffer("offsets", torch.arange(3) * IMAGE_CODE_RANGE, persistent=False)
        self.convs = nn.Sequential(
            nn.Conv2d(image_dim, image_dim, 3, padding=1), nn.BatchNorm2d(image_dim), nn.ReLU(),
            nn.Conv2d(image_dim, image_dim, 3, padding=1), nn.BatchNorm2d(image_dim), nn.ReLU(),
        )
        self.conv_bf16 = False

    def forward(self, images: Tensor) -> Tensor:
        """[B,7,7,3] integer codes -> [B, image_dim, 7, 7]."""
        codes = images.long().clamp(0, IMAGE_CODE_RANGE - 1) + self.offsets
        x = self.embedding(codes).sum(dim=3).permute(0, 3, 1, 2)  # [B, D, 7, 7]
        for layer in self.convs:
            x = self._conv(layer, x) if isinstance(layer, nn.Conv2d) else layer(x)
        return x


class TokenEncoder(nn.Module):
    """Bidirectional GRU over word embeddings, giving per-token features; padding is packed away."""

    def __init__(self, instr_dim: int) -> None:
        super().__init__()
        self.gru = nn.GRU(instr_dim, instr_dim // 2, batch_first=True, bidirectional=True)

    def forward(self, embedded: Tensor, mask: Tensor) -> Tensor:
        """[B, L, D] embeddings with [B, L] mask -> [B, L, D] features (zeros at padding)."""
        lengths = mask.sum(dim=1).clamp(min=1).cpu()
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        features, _ = self.gru(packed)
        features, _ = pad_packed_sequence(features, batch_first=True, total_length=embedded.shape[1])
        return features * mask.unsqueeze(-1).to(features.dtype)


class MemoryAttention(nn.Module):
    """Attention over token features with a query computed from a memory vector.

    With `heads` > 1 the memory gives that many queries, each reads the tokens on its own
    and the reads are concatenated ([B, heads x instr_dim]): one query tends to settle on
    one word (a thought's verb or purpose), several can also read the words that say which
    object. One head is the paper's attention, parameter for parameter.
    """

    def __init__(self, memory_dim: int, instr_dim: int, heads: int = 1) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(memory_dim, heads * instr_dim)

    @property
    def output_dim(self) -> int:
        """Size of what :meth:`forward` returns: heads x instr_dim."""
        return self.query.out_features

    def forward(self, memory: Tensor, features: Tensor, mask: Tensor) -> Tensor:
        if self.heads > 1:
            return self._forward_heads(memory, features, mask)
        scores = torch.einsum("bld,bd->bl", features, self.query(memory))
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=1) * mask.to(scores.dtype)
        return torch.einsum("bl,bld->bd", weights, features)

    def _forward_heads(self, memory: Tensor, features: Tensor, mask: Tensor) -> Tensor:
        queries = self.query(memory).view(len(memory), self.heads, features.shape[-1])
        scores = torch.einsum("bld,bhd->bhl", features, queries)
        scores = scores.masked_fill(~mask[:, None], torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=2) * mask[:, None].to(scores.dtype)
        return torch.einsum("bhl,bld->bhd", weights, features).flatten(1)

    def read_each(self, memories: Tensor, features: Tensor, mask: Tensor) -> Tensor:
        """T queries per row at once: memories [B, T, memory_dim] -> [B, T, instr_dim],
        row t equal to `forward(memories[:, t], features, mask)` (one head)."""
        assert self.heads == 1, "read_each reads with one head"
        scores = torch.einsum("bld,btd->btl", features, self.query(memories))
        scores = scores.masked_fill(~mask[:, None], torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=2) * mask[:, None].to(scores.dtype)
        return torch.einsum("btl,bld->btd", weights, features)


class CrossAttentionBlock(nn.Module):
    """A transformer-style block: one query attends to the mission tokens, then feed-forward."""

    def __init__(self, dim: int, heads: int = 2, dropout: float = 0.2) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(dim)
        self.feed_forward = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Dropout(dropout),
                                          nn.Linear(2 * dim, dim))
        self.norm2 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, query: Tensor, features: Tensor, mask: Tensor) -> Tensor:
        """query [B, D], features [B, L, D] -> [B, D]."""
        attended, _ = self.attention(query.unsqueeze(1), features, features,
                                     key_padding_mask=~mask, need_weights=False)
        x = self.norm1(query + self.dropout(attended.squeeze(1)))
        return self.norm2(x + self.dropout(self.feed_forward(x)))


class FiLMBlock(LowPrecisionConvs, nn.Module):
    """Feature-wise linear modulation of the visual map by a language vector, with a residual."""

    def __init__(self, channels: int, condition_dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)
        self.scale = nn.Linear(condition_dim, channels)
        self.shift = nn.Linear(condition_dim, channels)
        self.conv_bf16 = False

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        out = F.relu(self.bn1(self._conv(self.conv1, x)))
        out = self._conv(self.conv2, out) * self.scale(condition)[:, :, None, None] + self.shift(condition)[:, :, None, None]
        return F.relu(self.bn2(out)) + x


FRONT_CELL = (3, 5)
"""Where the cell the agent acts on lies in its 7x7 view: minigrid's egocentric image puts
the agent at the middle of the bottom row, (x=3, y=6), facing up, so pickup, drop and
toggle act on (x=3, y=5); images are indexed [x, y]."""


class VisualReader(nn.Module):
    """Two FiLM blocks conditioned on language, then a 7x7 max-pool to a vector.

    With `front_cell`, the modulated features of the cell in front of the agent
    (:data:`FRONT_CELL`) are appended to the pooled vector. Why: the max-pool keeps what is
    somewhere in view but not where, while pickup, drop and toggle depend on what is in that
    one cell; reading it directly lets "is the object in front the one my words name" be
    decided from one cell's features rather than recovered from the pool.
    """

    def __init__(self, image_dim: int, condition_dim: int, front_cell: bool = False) -> None:
        super().__init__()
        self.films = nn.ModuleList([FiLMBlock(image_dim, condition_dim) for _ in range(2)])
        self.pool = nn.MaxPool2d(kernel_size=7, stride=2)
        self.front_cell = front_cell
        self.output_dim = 2 * image_dim if front_cell else image_dim

    def forward(self, visual: Tensor, condition: Tensor) -> Tensor:
        """[B, image_dim, 7, 7] visual map, [B, condition_dim] -> [B, output_dim]."""
        for film in self.films:
            visual = film(visual, condition)
        pooled = self.pool(visual).flatten(1)
        if not self.front_cell:
            return pooled
        return torch.cat([pooled, visual[:, :, FRONT_CELL[0], FRONT_CELL[1]]], dim=1)
