"""The settings of one end-to-end run (every field is a flag of `tc-pipeline`) and where its
artefacts live under the storage root."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from babyai.common import storage
from babyai.common.errors import UserError
from babyai.common.seeds import IN_DISTRIBUTION_START
from babyai.env.envs import check_level


@dataclass
class PipelineConfig:
    """Scale and names of one end-to-end run. Defaults finish in about 10 minutes on 2 cores."""

    name: str = "quickstart"
    """Prefix of every artefact under the storage root."""
    env: str = "BabyAI-MiniBossLevel-v0"
    """Level of the demos, of training and of evaluation (BossLevel's grammar, small world)."""
    storage: str | None = None
    """Storage root (default $TC_STORAGE, else ./storage)."""
    episodes: int = 1000
    """Training demonstrations."""
    valid_episodes: int = 100
    """Validation demonstrations (the `_valid` file)."""
    noise_rate: float = 0.01
    """Demo noise (the paper's 0.01)."""
    seed: int = 1
    """Base seed of demos and training."""
    workers: int = 2
    """Processes for demo generation, level sets and evaluation."""
    epochs: int = 6
    """Training epochs, the same for TC and BC (same demos, same frames)."""
    batch_size: int = 32
    """Episodes per optimizer step (both agents)."""
    recurrence: int = 20
    """BPTT window in steps."""
    memory_dim: int = 128
    """Recurrent memory size."""
    instr_dim: int = 64
    """Word embedding / language feature size."""
    image_dim: int = 64
    """Visual map channels."""
    lr: float = 1e-3
    """Adam learning rate."""
    stop_tf: int | None = 2
    """TC's teacher forcing is 1 until this epoch, then falls linearly to 0 at the last
    epoch (-1: always teacher-forced), so the lower level learns to act on the upper level's
    own thoughts (the paper: 10 of 160 epochs). With the other defaults and the earlier
    mean thought loss: 48.0% success on 200 test levels with 2, 24.5% when always
    teacher-forced (docs/experiments.md)."""
    val_episodes: int = 50
    """Fresh levels played at each validation."""
    levels_per_bin: int = 10
    """Seeds per out-of-distribution bin."""
    levels_max_draws: int = 1500
    """Bound on the seeds measured to fill the level-set bins."""
    eval_episodes: int = 200
    """In-distribution test levels per model."""
    gif_seed: int = IN_DISTRIBUTION_START + 12
    """Level shown in the report's GIF: an in-distribution test seed whose mission combines
    open, put-next and "after" (the default TC agent solves it in 47 steps)."""
    finetune: bool = False
    """Also fine-tune TC and BC with PPO on the hardest out-of-distribution bins where both
    fail (the paper's Fig. 4b): a larger level set for those bins, then the runs, then
    success-vs-frames curves in the report."""
    finetune_frames: int = 10_240
    """Frames per fine-tuning run (with --finetune): 16 PPO updates of 16 environments x 40
    steps, sized for a shared 2-core CPU (the paper fine-tuned for millions of frames)."""
    finetune_seeds: int = 2
    """PPO seeds per agent and bin (with --finetune)."""
    finetune_levels_per_bin: int = 30
    """Seeds per bin of the fine-tuning level set (10 are held out for evaluation)."""
    finetune_max_draws: int = 1500
    """Bound on the seeds measured to fill the fine-tuning level set."""
    force: bool = False
    """Rerun every stage even if its inputs are unchanged."""
    extra_train_args: list[str] = field(default_factory=list, metadata={"flag": False})
    """Further flags passed to both training commands."""

    def check(self) -> None:
        check_level(self.env)
        for name in ("episodes", "valid_episodes", "epochs", "batch_size", "recurrence",
                     "memory_dim", "instr_dim", "image_dim", "val_episodes", "levels_per_bin",
                     "eval_episodes", "workers", "finetune_frames", "finetune_seeds",
                     "finetune_levels_per_bin", "finetune_max_draws"):
            if getattr(self, name) <= 0:
                raise UserError(f"--{name.replace('_', '-')} must be positive")
        if not 0 <= self.noise_rate <= 1:
            raise UserError("--noise-rate must be in [0, 1]")
        if self.stop_tf is not None and 0 <= self.epochs <= self.stop_tf:
            raise UserError(f"--stop-tf {self.stop_tf} is not below --epochs {self.epochs}: "
                            "teacher forcing would never decrease (use a smaller --stop-tf, "
                            "or -1 to always teacher-force)")


@dataclass
class Paths:
    """Where each artefact of a pipeline run lives."""

    root: Path
    name: str

    @property
    def demos(self) -> Path:
        return storage.demos_path(self.name, self.root)

    @property
    def valid_demos(self) -> Path:
        return storage.demos_path(self.name, self.root, valid=True)

    def model(self, kind: str) -> Path:
        return storage.model_dir(f"{self.name}_{kind}", self.root)

    def run(self, kind: str) -> storage.RunFiles:
        """The files of the `kind` ("tc" or "bc") training run."""
        return storage.run_files(self.model(kind))

    @property
    def levels(self) -> Path:
        return storage.levels_path(f"{self.name}_levels", self.root)

    @property
    def finetune_levels(self) -> Path:
        return storage.levels_path(f"{self.name}_finetune_levels", self.root)

    @property
    def report(self) -> Path:
        return storage.report_dir(self.name, self.root)
