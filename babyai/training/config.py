"""What a training run depends on: `TrainConfig`, written to `<run dir>/config.json`.

Every field is also a command-line flag of `tc-train` / `tc-train-bc` (the string under a
field is its `--help`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from babyai.agent.model import HISTORY_THOUGHTS, INSTR_ARCHS, THOUGHT_DECODERS, ModelConfig
from babyai.common.errors import UserError
from babyai.common.cli import positive_int
from babyai.common.seeds import TRAINER_VALIDATION_START
from babyai.env.envs import check_level
from babyai.training.binding import BINDING_SWAPS
from babyai.training.loss import THOUGHT_REDUCTIONS
from babyai.training.thought_weights import check_thought_weights, parse_thought_weights

LAYOUTS = ("lanes", "episodes")
CONV_PRECISIONS = ("auto", "bf16", "fp32")
CPU_PRECISIONS = ("fp32", "bf16")
EXTRA_LABELS = ("both", "thoughts")


@dataclass
class TrainConfig:
    """Everything a training run depends on; written to `<run dir>/config.json`."""

    demos: str
    """Training demonstrations: a name under <storage>/demos, a file, a shard directory or a
    glob. Validation demos are its `_valid` sibling."""
    extra_demos: str | None = None
    """More training episodes, added to --demos (no `_valid` sibling needed): e.g. the bot's
    labels of the agent's own states from `tc-make-dagger-demos`. A name, file, shard
    directory or glob, as --demos."""
    extra_demos_labels: str = field(default="both", metadata={"choices": EXTRA_LABELS})
    """What --extra-demos teach: `both` (thoughts and actions) or `thoughts` (their actions
    are not imitated: the thought loss only, e.g. to teach the upper level recoveries
    without the lower level imitating actions on the agent's own states; the logged action
    accuracy then counts their steps as misses)."""
    init_from: str | None = None
    """Start from this checkpoint's weights and vocabulary instead of a fresh initialisation
    (a model name, for its best.pt as the evaluation commands load it, or a .pt path):
    fine-tuning, e.g. on --extra-demos. The architecture flags must match it; the optimizer
    and the counters start afresh."""
    env: str = "BabyAI-BossLevel-v0"
    """The BabyAI level of the demos; validation plays fresh levels of it."""
    model: str | None = None
    """Run name: checkpoints and logs go to <storage>/models/<model>/ (default: derived)."""
    storage: str | None = None
    """Storage root (default $TC_STORAGE, else ./storage)."""
    use_thoughts: bool = True
    """True trains Thought Cloning; False the behavioural-cloning baseline (actions only)."""
    image_dim: int = 128
    """Visual map channels."""
    memory_dim: int = 256
    """Recurrent memory size (the paper: 2048; 256 suits a 2-core CPU)."""
    instr_dim: int = 128
    """Word embedding / language feature size (the paper: 256)."""
    instr_arch: str = "attgru"
    """Language encoder architecture (only `attgru` exists)."""
    thought_decoder: str = field(default="memory", metadata={"choices": THOUGHT_DECODERS})
    """What TC's thought decoder reads: `memory`, the upper memory only (the paper), or
    `mission`, also attention over the mission's words at every word it writes."""
    lower_heads: int = field(default=1, metadata={"type": positive_int})
    """Attention heads with which the lower level reads the mission and the thought (TC and
    BC alike; 1: the paper's single attention, which tends to settle on one word)."""
    front_cell: bool = False
    """The lower level also reads the features of the cell in front of the agent, next to
    the max-pooled visual map (TC and BC alike; off: the paper's lower level)."""
    dropout: float = 0.2
    """Dropout in the upper level's cross-attention blocks."""
    recurrence: int = 20
    """Steps of truncated back-propagation through time (the paper: 80)."""
    batch_size: int = 32
    """Episodes per optimizer step, over all ranks (the paper: 180); with `--layout lanes`,
    the number of lanes, and a batch holds as many steps on average."""
    layout: str = field(default="lanes", metadata={"choices": LAYOUTS})
    """How batches are laid out: `lanes` (each row a continuous stream of episodes, full
    rows at every step, about mean-length batches; faster) or `episodes` (one whole episode
    per row, as in the original: a batch runs as long as its longest episode)."""
    lr: float = 1e-4
    """Adam learning rate (the paper: 5e-4)."""
    optim_eps: float = 1e-5
    """Adam epsilon."""
    max_grad_norm: float = 0.5
    """Gradients are clipped to this global norm."""
    entropy_coef: float = 0.01
    """Weight of the action-entropy bonus."""
    sg_coef: float = 2.0
    """Weight of the thought loss (0 = TC without thought supervision)."""
    thought_loss_reduction: str = field(default="sum", metadata={"choices": THOUGHT_REDUCTIONS})
    """How a step's thought NLL combines its tokens: sum (the original implementation's) or
    mean (weaker by the mean thought length, about 7x on MiniBossLevel, at the same sg-coef)."""
    thought_weights: str | None = field(default=None, metadata={
        "type": check_thought_weights, "metavar": "SPEC"})
    """Weigh each step's thought NLL by its thought's family: `balanced` (the inverse square
    root of the family's share of the training steps) or `FAMILY=W,...` (others 1), scaled
    to mean 1 over the training steps (default: every thought weighs 1)."""
    counterfactual_coef: float = 0.0
    """Weight of the counterfactual pick-up term: at teacher-forced steps where the bot picks
    up under a thought naming a colour, the lower level also reads the thought with another
    colour (half the time another kind of object) and is penalised by -log(1 - p(pickup))
    (0 = off, the paper's loss; see babyai/training/counterfactual.py)."""
    binding_coef: float = 0.0
    """Weight of the binding term: the lower level gets a head that says, from its memory,
    whether the object in front is the one its thought names, trained with binary
    cross-entropy at teacher-forced steps facing an object, on the thought and on the same
    thought naming another colour or kind (0 = off, the paper's agent; see
    babyai/training/binding.py)."""
    binding_swap: str = field(default="colour", metadata={"choices": BINDING_SWAPS})
    """How the binding term's second reading changes the thought: `colour` (always the
    colour, half of the time also the kind) or `either` (the colour, the kind or both, one
    chance in three each)."""
    epochs: int = 20
    """Number of epochs."""
    epoch_length: int = 0
    """Episodes per epoch (0 = the whole dataset)."""
    episodes: int | None = None
    """Use only the first N training demos (None = all)."""
    warm_start: bool = False
    """Ramp the learning rate over the first 5 epochs: lr*(e+1)/5."""
    stop_tf: int | None = None
    """Teacher forcing is 1 before this epoch, then falls linearly to 0 at the last epoch
    (None = always teacher-forced)."""
    tf_floor: float = 0.0
    """Teacher forcing never falls below this probability (0 = the paper's schedule, down to
    0 at the last epoch; 1 = always teacher-forced)."""
    teacher_forcing: bool = True
    """Let the lower level read the demonstrator's thoughts on teacher-forced batches;
    `--no-teacher-forcing` makes it always read the upper level's own thoughts, so that with
    `--sg-coef 0` no thought of the demonstrator reaches training (TC without the thought
    loss, the ablation)."""
    history_thoughts: str = field(default="in_use", metadata={"choices": HISTORY_THOUGHTS})
    """What the upper level's thought history reads in training: `in_use` (the thought the
    lower level reads, the demonstrator's where teacher-forced: the paper) or `own` (always
    the agent's generated thought, as at test time; teacher forcing then only decides what
    the lower level reads)."""
    seed: int = 1
    """Seed of initialization, sampling, dropout and teacher-forcing draws."""
    val_seed: int = TRAINER_VALIDATION_START
    """First environment seed of validation levels; must not be a training demo seed (the
    default lies above every demo seed and below the level sets; see babyai.common.seeds)."""
    val_episodes: int = 100
    """Fresh levels played at each validation (0 = skip; best model then by action accuracy)."""
    val_argmax: bool = True
    """Validation plays greedy actions (as BabyAI's validation does)."""
    val_interval: int = 1
    """Validate every this many epochs (and after the last one)."""
    log_interval: int = 1
    """Write a log row and a console line every this many epochs."""
    save_interval: int = 1
    """Save `last.pt` every this many epochs (and after the last one); resume point."""
    keep_interval: int = 0
    """Also keep the weights after every this many epochs (and after the last one) as
    `epochs/epoch_<n>.pt`: weights, vocabulary and settings without the optimizer state,
    a `.pt` path for evaluation or --init-from, so a learning curve can be evaluated after
    the run (0 = off)."""
    patience: int = 0
    """Stop after this many validations without a better success rate (0 = never)."""
    tb: bool = False
    """Also write TensorBoard scalars (train/..., val/...) into the run directory."""
    device: str = "auto"
    """`auto`, `cpu` or `cuda` (mixed precision is used on CUDA only)."""
    conv_precision: str = field(default="auto", metadata={"choices": CONV_PRECISIONS})
    """Precision of the convolutions when training on a CPU: `bf16` (several times faster on
    CPUs with native bfloat16; everything else stays float32), `fp32`, or `auto` (bf16 where
    the CPU computes it natively). CUDA training uses float16 mixed precision regardless."""
    cpu_precision: str = field(default="fp32", metadata={"choices": CPU_PRECISIONS})
    """Mixed precision when training on a CPU: `bf16` runs the agent's training forward
    passes (every matrix product of the recurrent memories, the thought decoder, the
    attentions and the convolutions) under bfloat16 autocast, float32 accumulation; the
    memories' cell states, the losses, the weights and the optimizer stay float32. Several
    times faster matrix products on CPUs with native bfloat16, so it pays at large
    --memory-dim (the paper's 2048) and not at the pipeline's 128. `fp32`: off."""
    threads: int = 0
    """torch CPU threads (0 = the cores the load average leaves free, at least 1: on a
    shared 2-core machine 2 threads can be many times slower than 1 when another process
    holds a core)."""

    def check(self) -> None:
        """Clear errors for values the user got wrong, before any work is done."""
        if self.instr_arch not in INSTR_ARCHS:
            raise UserError(f"unknown --instr-arch {self.instr_arch!r}; available: "
                            f"{', '.join(INSTR_ARCHS)}")
        for name in ("memory_dim", "instr_dim", "image_dim", "recurrence", "batch_size",
                     "epochs", "val_interval", "log_interval", "save_interval"):
            if getattr(self, name) <= 0:
                raise UserError(f"--{name.replace('_', '-')} must be positive, "
                                f"got {getattr(self, name)}")
        if self.lr <= 0 or self.optim_eps <= 0:
            raise UserError("--lr and --optim-eps must be positive")
        if self.episodes is not None and self.episodes <= 0:
            raise UserError(f"--episodes must be positive, got {self.episodes}")
        if self.max_grad_norm <= 0:
            raise UserError(f"--max-grad-norm must be positive, got {self.max_grad_norm}")
        for name in ("entropy_coef", "sg_coef", "counterfactual_coef", "binding_coef",
                     "epoch_length", "val_seed",
                     "val_episodes", "patience", "threads", "stop_tf", "keep_interval"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise UserError(f"--{name.replace('_', '-')} must be >= 0, got {value}")
        if self.layout not in LAYOUTS:
            raise UserError(f"unknown --layout {self.layout!r}; available: {', '.join(LAYOUTS)}")
        if self.conv_precision not in CONV_PRECISIONS:
            raise UserError(f"unknown --conv-precision {self.conv_precision!r}; available: "
                            f"{', '.join(CONV_PRECISIONS)}")
        if self.cpu_precision not in CPU_PRECISIONS:
            raise UserError(f"unknown --cpu-precision {self.cpu_precision!r}; available: "
                            f"{', '.join(CPU_PRECISIONS)}")
        if self.history_thoughts not in HISTORY_THOUGHTS:
            raise UserError(f"unknown --history-thoughts {self.history_thoughts!r}; available: "
                            f"{', '.join(HISTORY_THOUGHTS)}")
        if self.extra_demos_labels not in EXTRA_LABELS:
            raise UserError(f"unknown --extra-demos-labels {self.extra_demos_labels!r}; "
                            f"available: {', '.join(EXTRA_LABELS)}")
        if self.extra_demos_labels == "thoughts" and (self.extra_demos is None
                                                      or not self.use_thoughts):
            raise UserError("--extra-demos-labels thoughts needs --extra-demos and a TC run "
                            "(a BC run would learn nothing from them)")
        if self.thought_weights is not None:
            if not self.use_thoughts:
                raise UserError("--thought-weights weighs the thought loss: a BC run has none")
            parse_thought_weights(self.thought_weights)
        if self.counterfactual_coef > 0 and not self.use_thoughts:
            raise UserError("--counterfactual-coef reads thoughts: a BC run has none")
        if self.counterfactual_coef > 0 and not self.teacher_forcing:
            raise UserError("--counterfactual-coef acts on teacher-forced steps: it needs "
                            "teacher forcing")
        if self.binding_coef > 0 and not self.use_thoughts:
            raise UserError("--binding-coef reads thoughts: a BC run has none")
        if self.binding_swap not in BINDING_SWAPS:
            raise UserError(f"unknown --binding-swap {self.binding_swap!r}; available: "
                            f"{', '.join(BINDING_SWAPS)}")
        if self.binding_coef > 0 and not self.teacher_forcing:
            raise UserError("--binding-coef acts on teacher-forced steps: it needs teacher "
                            "forcing")
        if not 0 <= self.tf_floor <= 1:
            raise UserError(f"--tf-floor must be in [0, 1], got {self.tf_floor}")
        if self.tf_floor > 0 and self.stop_tf is None:
            raise UserError("--tf-floor has no effect without --stop-tf (teacher forcing is "
                            "then always 1)")
        if not self.teacher_forcing and (self.stop_tf is not None or self.tf_floor > 0):
            raise UserError("--no-teacher-forcing leaves no schedule to set: drop --stop-tf "
                            "and --tf-floor")
        if self.stop_tf is not None and self.stop_tf >= self.epochs:
            raise UserError(f"--stop-tf {self.stop_tf} is not below --epochs {self.epochs}: "
                            "teacher forcing would never decrease (use a smaller --stop-tf, "
                            "or leave it out to always teacher-force)")
        check_level(self.env)

    def run_name(self) -> str:
        if self.model:
            return self.model
        kind = "tc" if self.use_thoughts else "bc"
        demos = Path(self.demos).stem if self.demos else "demos"
        return f"{demos}_{kind}_seed{self.seed}"

    def model_config(self, vocab_size: int) -> ModelConfig:
        return ModelConfig(vocab_size=vocab_size, image_dim=self.image_dim,
                           memory_dim=self.memory_dim, instr_dim=self.instr_dim,
                           instr_arch=self.instr_arch, use_thoughts=self.use_thoughts,
                           dropout=self.dropout, thought_decoder=self.thought_decoder,
                           front_cell=self.front_cell, lower_heads=self.lower_heads,
                           binding_head=self.binding_coef > 0)
