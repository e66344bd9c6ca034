"""What a fine-tuning run depends on: `RLConfig`, written to `<run dir>/config.json`.

Every field is a flag of `scripts/train_rl.py` (the string under a field is its `--help`).
Algorithm flags keep the names and, where they exist, the defaults of BabyAI 1.1's
`train_rl.py` (lr 1e-4, discount 0.99, GAE λ 0.99, clip 0.2, 4 PPO epochs, batch 1280,
recurrence 20, entropy 0.01, value 0.5, grad norm 0.5, 40 frames per process); `--procs`
is smaller than its 64 for a 2-core CPU.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from babyai.common.cli import non_negative_float, positive_int
from babyai.common.errors import UserError
from babyai.env.envs import check_level

ARCHS = ("tc", "bc")
DIFF_TYPES = ("demo", "mission")


@dataclass
class RLConfig:
    """Everything a fine-tuning run depends on (`--frames` may grow on resume)."""

    env: str
    """The BabyAI level played (also the level of the level set's seeds)."""
    model: str | None = None
    """Checkpoint to fine-tune: a model name under <storage>/models (its best.pt) or a .pt path."""
    arch: str | None = field(default=None, metadata={"choices": ARCHS})
    """Instead of --model: start from scratch with this architecture (needs --demos for the
    vocabulary)."""
    demos: str | None = None
    """With --arch: demonstrations whose missions and thoughts give the vocabulary."""
    rl_model: str | None = None
    """Run name under <storage>/models (default: <model>_rl, or <arch>_rl_seed<seed>)."""
    storage: str | None = None
    """Storage root (default $TC_STORAGE, else ./storage)."""
    testing_levels_path: str | None = None
    """Level set (a name under <storage>/levels or a .pkl path): episodes are drawn from the
    seeds of one of its bins (--diff-type, --diff). Without it: fresh seeds of --env."""
    diff_type: str | None = field(default=None, metadata={"choices": DIFF_TYPES})
    """Bin kind: 'demo' (behavioural difficulty) or 'mission' (cognitive difficulty)."""
    diff: str | None = None
    """Bin label, e.g. 425+ (demo) or 9 (mission)."""
    eval_episodes: int = field(default=20, metadata={"type": positive_int})
    """Held-out evaluation episodes: the last N seeds of the bin (never trained on), or N
    fresh seeds of --env."""
    eval_interval: int = field(default=10, metadata={"type": positive_int})
    """Evaluate every N updates (and after the last)."""
    frames: int = field(default=10**6, metadata={"type": positive_int})
    """Total environment frames of fine-tuning."""
    procs: int = field(default=16, metadata={"type": positive_int})
    """Environments played in parallel (BabyAI: 64)."""
    workers: int = field(default=2, metadata={"type": positive_int})
    """Processes stepping the environments (1 = in this process)."""
    frames_per_proc: int = field(default=40, metadata={"type": positive_int})
    """Steps per environment per update."""
    lr: float = 1e-4
    """Adam learning rate."""
    optim_eps: float = 1e-5
    """Adam epsilon."""
    discount: float = 0.99
    """Reward discount."""
    gae_lambda: float = 0.99
    """λ of generalised advantage estimation."""
    clip_eps: float = 0.2
    """PPO clipping of the probability ratio (and of the value change)."""
    ppo_epochs: int = field(default=4, metadata={"type": positive_int})
    """Passes over each collection."""
    batch_size: int = field(default=1280, metadata={"type": positive_int})
    """Frames per gradient step (a multiple of --recurrence)."""
    recurrence: int = field(default=20, metadata={"type": positive_int})
    """BPTT window in steps (divides --frames-per-proc)."""
    entropy_coef: float = field(default=0.01, metadata={"type": non_negative_float})
    """Weight of the entropy bonus."""
    value_loss_coef: float = field(default=0.5, metadata={"type": non_negative_float})
    """Weight of the value loss."""
    max_grad_norm: float = 0.5
    """Gradients are clipped to this global norm."""
    thought_loss_coef: float = field(default=0.0, metadata={"type": non_negative_float})
    """TC only: > 0 keeps the upper level learning with the imitation thought loss on the
    bot's thoughts for the states the agent visits (a bot runs beside every environment).
    0 (default) is the original code's setting: its PPO loss has no thought term, so the
    upper level changes only through weights it shares with the lower level."""
    seed: int = 1
    """Seeds the environments' seed streams, action sampling and minibatch order."""
    save_interval: int = field(default=1, metadata={"type": positive_int})
    """Write last.pt (the resume point) every N updates."""
    tb: bool = False
    """Also write TensorBoard scalars (x axis: frames)."""
    device: str = "cpu"
    """cpu, cuda or auto."""
    threads: int = field(default=1, metadata={"type": positive_int})
    """Torch threads (1 on a busy CPU)."""
    memory_dim: int = 128
    """With --arch: recurrent memory size."""
    instr_dim: int = 64
    """With --arch: word embedding size."""
    image_dim: int = 64
    """With --arch: visual map channels."""

    def check(self) -> None:
        check_level(self.env)
        if (self.model is None) == (self.arch is None):
            raise UserError("give exactly one of --model (fine-tune a checkpoint) and --arch "
                            "(start from scratch)")
        if self.arch is not None and self.demos is None:
            raise UserError("--arch needs --demos: the vocabulary comes from demonstrations")
        if self.testing_levels_path is not None and (self.diff_type is None or self.diff is None):
            raise UserError("--testing-levels-path needs --diff-type and --diff (the bin to train on)")
        if self.testing_levels_path is None and (self.diff_type or self.diff):
            raise UserError("--diff-type/--diff need --testing-levels-path")
        if self.frames_per_proc % self.recurrence:
            raise UserError(f"--recurrence {self.recurrence} must divide --frames-per-proc "
                            f"{self.frames_per_proc}")
        if self.batch_size % self.recurrence:
            raise UserError(f"--batch-size {self.batch_size} must be a multiple of --recurrence "
                            f"{self.recurrence}")
        if self.arch == "bc" and self.thought_loss_coef > 0:
            raise UserError("--thought-loss-coef needs a TC agent: BC has no upper level")
        for name in ("discount", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UserError(f"--{name.replace('_', '-')} must be in [0, 1]")
        for name in ("lr", "clip_eps", "max_grad_norm", "optim_eps"):
            if not getattr(self, name) > 0:
                raise UserError(f"--{name.replace('_', '-')} must be positive")

    def run_name(self) -> str:
        if self.rl_model:
            return self.rl_model
        if self.model is not None:
            base = self.model[:-3] if self.model.endswith(".pt") else self.model
            return base.replace("/", "_").strip("_") + "_rl"
        return f"{self.arch}_rl_seed{self.seed}"

    @property
    def frames_per_update(self) -> int:
        return self.procs * self.frames_per_proc
