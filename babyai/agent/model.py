"""The Thought Cloning agent: an upper level that thinks and a lower level that acts.

One step of the agent (see docs/algorithm.md), for a batch of B environments:

    image codes [B,7,7,3] --ImageEncoder--> visual map [B,image_dim,7,7]
    mission tokens --word embedding + BiGRU--> mission features [B,L,instr_dim]  (once per episode)

    upper level (ThoughtGenerator), when the agent thinks:
        context = attention(upper memory -> mission) + cross-attention(history -> mission)
        FiLM(visual map | context) -> max-pool -> LSTMCell -> new upper memory
        LSTM decoder from the new upper memory -> thought tokens
        (teacher-forced on the target thought in training, greedy otherwise;
         with `thought_decoder="mission"`, each word also reads attention(decoder -> mission))
    thought history: attention(new upper memory -> thought in use) -> LSTMCell
    lower level (ActionPolicy):
        language = attention(lower memory -> thought) + attention(lower memory -> mission)
        (with `lower_heads` > 1, each attention has that many queries, reads concatenated)
        FiLM(visual map | language) -> max-pool -> LSTMCell -> actor / critic
        (with `front_cell`, the pooled vector is joined by the features of the cell in front)

The behavioural-cloning baseline is the same agent with `use_thoughts=False`: no upper
level, no history, and a lower level that reads the mission only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from babyai.agent.layers import (CrossAttentionBlock, ImageEncoder, MemoryAttention, TokenEncoder,
                                 VisualReader)
from babyai.common.errors import UserError
from babyai.data.vocab import BOS, EOS, MAX_THOUGHT_TOKENS, PAD

INSTR_ARCHS = ("attgru",)
POLICY_THOUGHTS = ("in_use", "zeroed", "shuffled")
"""What the lower level may read (see :meth:`Agent.forward`): the thought-reliance ablations."""
THOUGHT_DECODERS = ("memory", "mission")
"""What the thought decoder reads while it writes: the new upper memory only (the paper), or
also the mission's words, attended to afresh at every word it writes."""
HISTORY_THOUGHTS = ("in_use", "own")
"""What the thought history reads: the thought in use (the lower level's, teacher-forced or
not: the paper) or always the agent's own generated thought (as at test time)."""


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild an agent; saved in every checkpoint."""

    vocab_size: int
    """Words in the frozen vocabulary (missions and thoughts share it)."""
    image_dim: int = 128
    """Channels of the visual map and size of the pooled image vector."""
    memory_dim: int = 2048
    """Hidden size of every recurrent memory (upper, lower, history) and the decoder."""
    instr_dim: int = 256
    """Word embedding size; each BiGRU direction has instr_dim/2 units."""
    instr_arch: str = "attgru"
    """Language encoder: attention over bidirectional-GRU token features (the only one)."""
    use_thoughts: bool = True
    """False builds the behavioural-cloning baseline (mission-only lower level)."""
    dropout: float = 0.2
    """Dropout in the upper level's cross-attention blocks."""
    thought_decoder: str = "memory"
    """One of :data:`THOUGHT_DECODERS`: "memory" starts an LSTM from the upper memory and
    reads nothing else (the paper); "mission" also attends to the mission's words at every
    word, so naming an object the mission names is a lookup rather than a recall from the
    memory vector."""
    lower_heads: int = 1
    """Attention heads with which the lower level reads the mission and (TC) the thought,
    each a query from the lower memory; their reads are concatenated before the projection.
    1 is the paper's lower level. Applies to TC and BC alike."""
    front_cell: bool = False
    """The lower level also reads the visual features of the cell in front of the agent,
    next to the max-pooled map (see :class:`~babyai.agent.layers.VisualReader`); False is
    the paper's lower level. Applies to TC and BC alike."""
    binding_head: bool = False
    """TC's lower level also gives, from its memory, one logit for "the object in front is
    the one my thought names" (trained by the trainer's --binding-coef; see
    babyai/training/binding.py). False is the paper's lower level."""
    num_actions: int = 7
    """BabyAI's action space."""

    def __post_init__(self) -> None:
        if self.instr_arch not in INSTR_ARCHS:
            raise UserError(f"unknown --instr-arch {self.instr_arch!r}; "
                            f"available: {', '.join(INSTR_ARCHS)}")
        if self.thought_decoder not in THOUGHT_DECODERS:
            raise UserError(f"unknown --thought-decoder {self.thought_decoder!r}; "
                            f"available: {', '.join(THOUGHT_DECODERS)}")
        if self.instr_dim % 2:
            raise UserError(f"--instr-dim must be even (two GRU directions), got {self.instr_dim}")
        for name in ("vocab_size", "image_dim", "memory_dim", "instr_dim", "num_actions",
                     "lower_heads"):
            if getattr(self, name) <= 0:
                raise UserError(f"{name} must be positive, got {getattr(self, name)}")
        if self.binding_head and not self.use_thoughts:
            raise UserError("a binding head reads thoughts: a BC agent has none")


class Memory(NamedTuple):
    """Recurrent state of a batch of agents; every field is [B, memory_dim]."""

    upper_h: Tensor
    upper_c: Tensor
    lower_h: Tensor
    lower_c: Tensor
    history_h: Tensor
    history_c: Tensor

    @classmethod
    def zeros(cls, batch: int, memory_dim: int, device: torch.device | str | None = None) -> "Memory":
        return cls(*(torch.zeros(batch, memory_dim, device=device) for _ in cls._fields))

    def mask(self, keep: Tensor) -> "Memory":
        """Reset the rows where `keep` is 0 (an episode starts there)."""
        keep = keep.to(self.upper_h.dtype).unsqueeze(1)
        return Memory(*(field * keep for field in self))

    def detach(self) -> "Memory":
        return Memory(*(field.detach() for field in self))

    def index(self, rows: Tensor | list[int] | slice) -> "Memory":
        """The memories of a subset of the batch."""
        return Memory(*(field[rows] for field in self))


class TextEncoding(NamedTuple):
    """Per-token features of a batch of token sequences: missions (encoded once per episode
    and reused at every step) or thoughts (encoded at every step)."""

    features: Tensor  # [B, L, instr_dim]
    mask: Tensor  # [B, L] bool, True for real tokens

    def index(self, rows: Tensor | list[int] | slice) -> "TextEncoding":
        return TextEncoding(self.features[rows], self.mask[rows])


class AgentOutput(NamedTuple):
    """What one step of the agent produces."""

    action_logits: Tensor  # [B, num_actions]
    value: Tensor  # [B]
    thought_logits: Tensor | None  # [B, Lt-1, vocab]: predictions of thought_target[:, 1:]
    thought_tokens: Tensor | None  # [B, <=15] greedy thought: words, EOS, then PAD
    memory: Memory
    counterfactual_logits: Tensor | None = None
    """[K, num_actions]: the lower level's action logits for the `counterfactual` rows read
    with their counterfactual thoughts (only when asked for)."""
    counterfactual_lower_h: Tensor | None = None
    """[K, memory_dim]: the lower memory those readings produce (nothing carries it on)."""


# --------------------------------------------------------------------------- the two levels


class ThoughtGenerator(nn.Module):
    """The upper level: from observation, mission and thought history to the next thought."""

    def __init__(self, config: ModelConfig, word_embedding: nn.Embedding) -> None:
        super().__init__()
        d, m = config.instr_dim, config.memory_dim
        self.word_embedding = word_embedding
        self.memory_attention = MemoryAttention(m, d)
        self.history_query = nn.Linear(m, d)
        self.cross_attention = nn.ModuleList(
            [CrossAttentionBlock(d, heads=2, dropout=config.dropout) for _ in range(2)])
        self.visual_reader = VisualReader(config.image_dim, d)
        self.memory_cell = nn.LSTMCell(config.image_dim, m)
        self.decoder = nn.LSTM(d, m, batch_first=True)
        self.reads_mission = config.thought_decoder == "mission"
        if self.reads_mission:
            self.word_attention = MemoryAttention(m, d)
        self.output = nn.Linear(m + d if self.reads_mission else m, config.vocab_size)

    def update_memory(self, visual: Tensor, mission: TextEncoding, memory: Memory) -> tuple[Tensor, Tensor]:
        """Steps 1-5 of the upper level: the new upper memory (h, c)."""
        context = self.memory_attention(memory.upper_h, mission.features, mission.mask)
        query = self.history_query(memory.history_h)
        for block in self.cross_attention:
            query = block(query, mission.features, mission.mask)
        pooled = self.visual_reader(visual, context + query)
        return self.memory_cell(pooled, (memory.upper_h, memory.upper_c))

    def _word_logits(self, outputs: Tensor, mission: TextEncoding | None) -> Tensor:
        """Decoder outputs [B, T, m] -> vocabulary logits [B, T, V] (with the mission decoder,
        each output first reads the mission's words)."""
        if not self.reads_mission:
            return self.output(outputs)
        assert mission is not None, "a mission-reading thought decoder needs the mission"
        read = self.word_attention.read_each(outputs, mission.features, mission.mask)
        return self.output(torch.cat([outputs, read], dim=-1))

    def teacher_forced_logits(self, state: tuple[Tensor, Tensor], target: Tensor,
                              mission: TextEncoding | None = None) -> Tensor:
        """Logits [B, Lt-1, V] predicting target[:, 1:] from target[:, :-1]."""
        h, c = state
        outputs, _ = self.decoder(self.word_embedding(target[:, :-1]), (h.unsqueeze(0), c.unsqueeze(0)))
        return self._word_logits(outputs, mission)

    @torch.no_grad()
    def generate(self, state: tuple[Tensor, Tensor], mission: TextEncoding | None = None,
                 max_tokens: int = MAX_THOUGHT_TOKENS) -> Tensor:
        """Greedy decoding for the whole batch: [B, <=max_tokens] words, EOS, then PAD."""
        h, c = state
        hidden = (h.unsqueeze(0), c.unsqueeze(0))
        batch = h.shape[0]
        token = torch.full((batch, 1), BOS, dtype=torch.long, device=h.device)
        finished = torch.zeros(batch, dtype=torch.bool, device=h.device)
        tokens = []
        for _ in range(max_tokens):
            output, hidden = self.decoder(self.word_embedding(token), hidden)
            if self.reads_mission:
                logits = self._word_logits(output, mission)[:, 0].float()
            else:  # the paper's decoder keeps its 2-D word layer call, bit for bit as before
                logits = self.output(output[:, 0]).float()
            logits[:, PAD] = float("-inf")
            logits[:, BOS] = float("-inf")
            next_token = logits.argmax(dim=1)
            next_token = torch.where(finished, torch.full_like(next_token, PAD), next_token)
            tokens.append(next_token)
            finished |= next_token == EOS
            if bool(finished.all()):
                break
            token = next_token.unsqueeze(1)
        return torch.stack(tokens, dim=1)


class ActionPolicy(nn.Module):
    """The lower level: from observation, mission and (for TC) the current thought to an action."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d, m = config.instr_dim, config.memory_dim
        self.use_thoughts = config.use_thoughts
        self.mission_attention = MemoryAttention(m, d, config.lower_heads)
        self.mission_projection = nn.Linear(self.mission_attention.output_dim, d)
        if config.use_thoughts:
            self.thought_attention = MemoryAttention(m, d, config.lower_heads)
            self.thought_projection = nn.Linear(self.thought_attention.output_dim, d)
        self.visual_reader = VisualReader(config.image_dim, d, front_cell=config.front_cell)
        self.memory_cell = nn.LSTMCell(self.visual_reader.output_dim, m)
        self.actor = nn.Sequential(nn.Linear(m, 64), nn.Tanh(), nn.Linear(64, config.num_actions))
        self.critic = nn.Sequential(nn.Linear(m, 64), nn.Tanh(), nn.Linear(64, 1))
        if config.binding_head:
            self.binding = nn.Linear(m, 1)

    def forward(self, visual: Tensor, mission: TextEncoding, thought: TextEncoding | None,
                memory: Memory) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor]]:
        language = self.mission_projection(
            self.mission_attention(memory.lower_h, mission.features, mission.mask))
        if self.use_thoughts:
            assert thought is not None, "a thought-conditioned policy needs a thought"
            language = language + self.thought_projection(
                self.thought_attention(memory.lower_h, thought.features, thought.mask))
        pooled = self.visual_reader(visual, language)
        h, c = self.memory_cell(pooled, (memory.lower_h, memory.lower_c))
        return self.actor(h), self.critic(h).squeeze(1), (h, c)


class Agent(nn.Module):
    """Thought Cloning agent (or, with `use_thoughts=False`, the behavioural-cloning baseline)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        d, m = config.instr_dim, config.memory_dim
        self.word_embedding = nn.Embedding(config.vocab_size, d, padding_idx=PAD)
        self.image_encoder = ImageEncoder(config.image_dim)
        self.mission_encoder = TokenEncoder(d)
        self.policy = ActionPolicy(config)
        if config.use_thoughts:
            self.thought_encoder = TokenEncoder(d)
            self.thinker = ThoughtGenerator(config, self.word_embedding)
            self.history_attention = MemoryAttention(m, d)
            self.history_cell = nn.LSTMCell(d, m)

    def initial_memory(self, batch: int, device: torch.device | str | None = None) -> Memory:
        device = device if device is not None else self.word_embedding.weight.device
        return Memory.zeros(batch, self.config.memory_dim, device)

    def encode_missions(self, tokens: Tensor) -> TextEncoding:
        """[B, L] mission token ids (PAD-padded) -> per-token features and mask."""
        return self._encode(tokens, self.mission_encoder)

    def encode_thoughts(self, tokens: Tensor) -> TextEncoding:
        """[B, Lt] thought token ids (PAD-padded) -> per-token features and mask."""
        return self._encode(tokens, self.thought_encoder)

    def encode_thought_table(self, table: Tensor, index: Tensor) -> TextEncoding:
        """Encode the distinct thoughts `table` [U, Lt] once and gather rows `index` [...]:
        equal to `encode_thoughts(table[index])` (each row is encoded independently)."""
        encoded = self.encode_thoughts(table)
        return TextEncoding(encoded.features[index], encoded.mask[index])

    def _encode(self, tokens: Tensor, encoder: TokenEncoder) -> TextEncoding:
        mask = tokens != PAD
        return TextEncoding(encoder(self.word_embedding(tokens), mask), mask)

    def forward(self, images: Tensor, mission: TextEncoding, memory: Memory,
                thought_target: Tensor | None = None, teacher_forcing: bool | Tensor = True,
                with_thought_logits: bool = True, thought_encoding: TextEncoding | None = None,
                policy_thought: str = "in_use", history_thought: str = "in_use",
                counterfactual: tuple[Tensor, Tensor] | None = None) -> AgentOutput:
        """One step for a batch of agents (see the module docstring).

        `teacher_forcing` may be one bool for the batch or a [B] bool tensor: rows where it
        is True use `thought_target`, the others the generated thought (an oracle evaluation
        falls back to the agent's own thought where the bot has given up).
        `with_thought_logits=False` skips the teacher-forced decoder pass; a trainer can then
        run it for a whole window at once with :meth:`thought_logits` on the upper memories,
        which is the same computation in fewer, larger matrix products.
        `thought_encoding`, when teacher-forced, is `encode_thoughts(thought_target)` computed
        by the caller (e.g. rows gathered from :meth:`encode_thought_table`): thoughts repeat,
        so encoding each distinct one once per window is the same math for less work.
        `policy_thought` ablates what the lower level reads (the upper level and the thought
        history keep the thought in use): "in_use", "zeroed" (all-zero thought features)
        or "shuffled" (the thought of the next row of the batch, i.e. of another episode).
        `history_thought="own"` makes the thought history read the agent's generated thought
        even where the lower level is teacher-forced: teacher forcing then shapes only what
        the lower level learns to read, and the upper level trains on its own history.
        `counterfactual=(rows, tokens)` also has the lower level read rows `rows` ([K]) of
        the batch with the thoughts `tokens` ([K, Lt]) instead of theirs, in the same pass
        as the real rows (so BatchNorm normalises both alike); their action logits come
        back as `counterfactual_logits` and change nothing else (see
        babyai.training.counterfactual).
        """
        if policy_thought not in POLICY_THOUGHTS:
            raise ValueError(f"policy_thought must be one of {POLICY_THOUGHTS}, got {policy_thought!r}")
        if history_thought not in HISTORY_THOUGHTS:
            raise ValueError(f"history_thought must be one of {HISTORY_THOUGHTS}, got {history_thought!r}")
        visual = self.image_encoder(images)
        if not self.config.use_thoughts:
            logits, value, (lower_h, lower_c) = self.policy(visual, mission, None, memory)
            new_memory = memory._replace(lower_h=lower_h, lower_c=lower_c)
            return AgentOutput(logits, value, None, None, new_memory)

        upper_h, upper_c = self.thinker.update_memory(visual, mission, memory)
        predicted = None
        if thought_target is not None and with_thought_logits:
            predicted = self.thinker.teacher_forced_logits((upper_h, upper_c), thought_target, mission)
        generated = own = None
        forced = teacher_forcing if isinstance(teacher_forcing, Tensor) else None
        all_forced = forced is None and bool(teacher_forcing) and thought_target is not None
        own_history = history_thought == "own"
        if not all_forced or own_history:
            generated = self.thinker.generate((upper_h, upper_c), mission)
            own = torch.cat([torch.full_like(generated[:, :1], BOS), generated], dim=1)
        if all_forced:
            thought_in_use = thought_target
        elif forced is not None and thought_target is not None:
            thought_in_use = _select_rows(forced, thought_target, own)
        else:
            thought_in_use = own
        if all_forced and thought_encoding is not None:
            thought = thought_encoding
        else:
            thought = self.encode_thoughts(thought_in_use)

        # the history reads the thought in use, unless told to read the agent's own and
        # some rows were teacher-forced (otherwise the thought in use is its own already)
        history = thought
        if own_history and thought_in_use is not own:
            history = self.encode_thoughts(own)
        history_input = self.history_attention(upper_h, history.features, history.mask)
        history_h, history_c = self.history_cell(history_input, (memory.history_h, memory.history_c))
        if policy_thought == "zeroed":
            thought = TextEncoding(torch.zeros_like(thought.features), thought.mask)
        elif policy_thought == "shuffled":
            thought = TextEncoding(thought.features.roll(1, dims=0), thought.mask.roll(1, dims=0))
        if counterfactual is None:
            logits, value, (lower_h, lower_c) = self.policy(visual, mission, thought, memory)
            counterfactual_logits = counterfactual_h = None
        else:
            rows, tokens = counterfactual
            n = len(visual)
            logits, value, (lower_h, lower_c) = self.policy(
                torch.cat([visual, visual[rows]]), _cat_text(mission, mission.index(rows)),
                _cat_text(thought, self.encode_thoughts(tokens)),
                Memory(*(torch.cat([field, field[rows]]) for field in memory)))
            counterfactual_logits, counterfactual_h = logits[n:], lower_h[n:]
            logits, value, lower_h, lower_c = logits[:n], value[:n], lower_h[:n], lower_c[:n]
        new_memory = Memory(upper_h, upper_c, lower_h, lower_c, history_h, history_c)
        return AgentOutput(logits, value, predicted, generated, new_memory, counterfactual_logits,
                           counterfactual_h)

    def binding_logits(self, lower_h: Tensor) -> Tensor:
        """[N] logits that the object in front is the one the thought names, from lower
        memories [N, memory_dim] (an agent built with `binding_head`)."""
        return self.policy.binding(lower_h).squeeze(1)

    def thought_logits(self, upper_h: Tensor, upper_c: Tensor, thought_target: Tensor,
                       mission: TextEncoding | None = None) -> Tensor:
        """Teacher-forced thought logits [N, Lt-1, V] from upper memories [N, memory_dim].

        N may stack many steps (e.g. a whole BPTT window), since given the upper memory
        (and, for a mission-reading decoder, each step's `mission` row) each step's decoding
        is independent of the others.
        """
        return self.thinker.teacher_forced_logits((upper_h, upper_c), thought_target, mission)

    @property
    def thought_decoder_reads_mission(self) -> bool:
        """Whether :meth:`thought_logits` needs each step's encoded mission."""
        return self.config.use_thoughts and self.thinker.reads_mission


def _cat_text(first: TextEncoding, second: TextEncoding) -> TextEncoding:
    """The rows of two encodings in one, the shorter padded (masked out) to the longer."""
    width = max(first.features.shape[1], second.features.shape[1])

    def pad(text: TextEncoding) -> TextEncoding:
        extra = width - text.features.shape[1]
        return TextEncoding(torch.nn.functional.pad(text.features, (0, 0, 0, extra)),
                            torch.nn.functional.pad(text.mask, (0, extra), value=False))
    first, second = pad(first), pad(second)
    return TextEncoding(torch.cat([first.features, second.features]),
                        torch.cat([first.mask, second.mask]))


def _select_rows(rows: Tensor, first: Tensor, second: Tensor) -> Tensor:
    """Token rows of `first` where `rows` is True, else of `second` (PAD-padded to one width)."""
    width = max(first.shape[1], second.shape[1])
    first = torch.nn.functional.pad(first, (0, width - first.shape[1]), value=PAD)
    second = torch.nn.functional.pad(second, (0, width - second.shape[1]), value=PAD)
    return torch.where(rows.to(first.device)[:, None], first, second)


def build_agent(config: ModelConfig) -> Agent:
    """The one constructor used by training, evaluation and checkpoint loading."""
    return Agent(config)


def count_parameters(module: nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def eval_with_rnn_gradients(module: nn.Module) -> None:
    """Evaluation mode (BatchNorm running statistics, no dropout) through which a loss can
    still be back-propagated on a GPU: cuDNN refuses the backward pass of an RNN in
    evaluation mode, so the RNNs stay in training mode, which changes nothing in their
    forward pass because none of them has dropout of its own."""
    module.eval()
    for sub in module.modules():
        if isinstance(sub, nn.RNNBase):
            if sub.dropout:
                raise ValueError(f"{type(sub).__name__} with dropout {sub.dropout}: training "
                                 "mode would change its forward pass")
            sub.train()
