"""Training speed and memory: this trainer against the original's, and TC against BC.

Prints demonstration steps (frames) trained per second, medians of `--repeats` runs, each run
in its own subprocess (so its peak resident memory is its own) and the runs of the variants
interleaved (so a change in the machine's load hits every variant alike):

    (a) TC at the paper's dims: --memory-dim 2048 --instr-dim 256 --batch-size 32 --recurrence 80
    (b) TC at --memory-dim 256 --instr-dim 128 --batch-size 32 --recurrence 20
        both with teacher forcing on and off, in float32 and (on a CPU) with
        --cpu-precision bf16, against the original implementation's
        frames/s (constants below) and against this trainer's per-episode fp32 layout;
    (p) TC and BC at the default pipeline's dims (--memory-dim 128 --instr-dim 64
        --image-dim 64, batch 32, recurrence 20) on MiniBossLevel bot demos, and their ratio.

(a) and (b) use BossLevel-like demos made here without the bot: real BossLevel missions,
log-normal episode lengths around the ~87 steps of the paper's dataset (15-300), random
observation codes and plausible thoughts. Lanes are planned over all the run's episodes and
the batches in the middle are timed (full rows, as in an epoch); the per-episode layout times
batches of the same episodes. The load average is printed before and after: on a shared
machine, compare only figures of one run.

`--profile N` also runs each variant under torch's profiler and prints where its time goes:
the shares of self CPU time of convolutions, matrix products, the rest (elementwise, copies,
autograd bookkeeping) and the N most costly operators. Frames/s are lower under the profiler;
compare them only with other profiled figures.

`--device cuda` measures on a GPU (mixed precision, as training uses there): the timer waits
for the GPU, the peak GPU memory is printed beside the peak RSS, and each TC line says how
many hours the paper's 7x10^8 frames would take at that speed. `--batch-size N` overrides
the batch size of every setting (a GPU is only kept busy by larger batches).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from babyai.common.cli import non_negative_int, positive_int, run
from babyai.common.errors import UserError
from babyai.common.flags import Parser
from babyai.common.runtime import default_threads, deterministic_kernels
from babyai.common.storage import demos_path
from babyai.data.lanes import LanePlan
from babyai.demos.episode import Episode
from babyai.demos.files import save_demos
from babyai.demos.generate import generate_episode
from babyai.env.envs import make_env
from babyai.env.thoughts import random_thought
from babyai.training.config import TrainConfig
from babyai.training.trainer import Trainer

SETTINGS = {
    "a": dict(memory_dim=2048, instr_dim=256, batch_size=32, recurrence=80),
    "b": dict(memory_dim=256, instr_dim=128, batch_size=32, recurrence=20),
    "p": dict(memory_dim=128, instr_dim=64, image_dim=64, batch_size=32, recurrence=20),
}
LEVELS = {"a": "BabyAI-BossLevel-v0", "b": "BabyAI-BossLevel-v0", "p": "BabyAI-MiniBossLevel-v0"}
PAPER_FRAMES = 7e8
"""Frames the paper trained its BossLevel agents on (for the projected hours on a GPU)."""
ORIGINAL_FPS = {"a": 40.0, "b": 310.0}
"""Frames/s of the original Thought Cloning implementation (teacher-forced TC training),
measured on this kind of machine (2 CPU cores) at settings (a) and (b): the references of
the speed targets (2x these)."""
NEW = dict(layout="lanes", conv_precision="auto", cpu_precision="fp32")  # explicit: the
OLD = dict(layout="episodes", conv_precision="fp32", cpu_precision="fp32")  # defaults may differ
MIXED = dict(NEW, cpu_precision="bf16")
"""--cpu-precision bf16: the whole training forward pass under bfloat16 autocast."""
MIXED_EPISODES = dict(OLD, conv_precision="auto", cpu_precision="bf16")
"""bf16 with per-episode batches: the speed of bfloat16 at the per-episode trainer's memory."""


def synthetic_episodes(count: int, seed: int, env_name: str) -> list[Episode]:
    """Missions of `env_name` with random observations, realistic lengths and plausible thoughts."""
    rng = np.random.default_rng(seed)
    env = make_env(env_name)
    episodes = []
    for index in range(count):
        obs, _ = env.reset(seed=seed + index)
        length = int(np.clip(rng.lognormal(np.log(80), 0.5), 15, 300))
        images = np.stack([rng.integers(0, 11, (length, 7, 7)), rng.integers(0, 6, (length, 7, 7)),
                           rng.integers(0, 3, (length, 7, 7))], axis=-1).astype(np.uint8)
        thoughts, current = [], random_thought(rng)
        for _ in range(length):
            if rng.random() < 0.1:
                current = random_thought(rng)
            thoughts.append(current)
        episodes.append(Episode(obs["mission"], images, rng.integers(0, 4, length),
                                rng.integers(0, 7, length), thoughts, seed + index))
    return episodes


def bot_episodes(count: int, seed: int, env_name: str) -> list[Episode]:
    episodes, candidate = [], seed
    while len(episodes) < count:
        episode = generate_episode(env_name, candidate, noise_rate=0.01)
        candidate += 1
        if episode is not None:
            episodes.append(episode)
    return episodes


def setting_sizes(setting: str, batch_size: int | None = None) -> dict:
    """The model and batch sizes of a setting, with `--batch-size` applied."""
    return dict(SETTINGS[setting], **({"batch_size": batch_size} if batch_size else {}))


OPERATOR_KINDS = {"convolutions": ("conv",), "matrix products": ("mm", "matmul", "linear", "bmm")}
"""Operator kinds of the profile summary, by substrings of aten operator names; the rest
(elementwise, copies, views, autograd bookkeeping) is "other"."""


def operator_kind(name: str) -> str:
    lowered = name.lower()
    for kind, parts in OPERATOR_KINDS.items():
        if any(part in lowered for part in parts):
            return kind
    return "other"


def profile_summary(events, top: int) -> dict:
    """Shares of self CPU time by operator kind and the `top` operators, from a profiler's
    `key_averages()`; self times, so that nested operators are not counted twice."""
    times = {event.key: event.self_cpu_time_total for event in events}
    total = sum(times.values()) or 1.0
    kinds = {kind: 0.0 for kind in (*OPERATOR_KINDS, "other")}
    for name, spent in times.items():
        kinds[operator_kind(name)] += spent / total
    ranked = sorted(times.items(), key=lambda item: -item[1])[:top]
    return {"kinds": kinds, "top": [(name, spent / total) for name, spent in ranked]}


def measure(setting: str, variant: dict, batches: int, threads: int, device: str = "cpu",
            batch_size: int | None = None, profile: int = 0) -> dict:
    """One variant in this process: frames/s over `batches` timed batches, and the peak RSS
    (and, on a GPU, its peak memory); with `profile` > 0, under torch's profiler, with its
    summary (`profile_summary`)."""
    torch.set_num_threads(threads)
    sizes, env = setting_sizes(setting, batch_size), LEVELS[setting]
    cuda = device == "cuda"

    def now() -> float:
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    count = sizes["batch_size"] * (batches + 2)
    # the kernels training uses (tc-train runs under deterministic_kernels too)
    with tempfile.TemporaryDirectory() as root, deterministic_kernels(torch.device(device)):
        make = bot_episodes if setting == "p" else synthetic_episodes
        episodes = make(count, 1, env)
        save_demos(demos_path("bench", Path(root)), episodes, {"env": env})
        save_demos(demos_path("bench", Path(root), valid=True), episodes[:2], {"env": env})
        del episodes
        trainer = Trainer(TrainConfig(demos="bench", env=env, storage=root, model="bench",
                                      val_episodes=0, device=device, threads=threads,
                                      use_thoughts=variant["tc"], layout=variant["layout"],
                                      conv_precision=variant["conv_precision"],
                                      cpu_precision=variant.get("cpu_precision", "fp32"),
                                      **sizes))
        trainer.agent.train()
        profiler = (torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
                    if profile else contextlib.nullcontext())
        frames, seconds = _timed_batches(trainer.step, trainer.train_data, variant, sizes,
                                         np.arange(count), batches, now, profiler)
    result = {"fps": frames / seconds, "frames": frames,
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else 0.0}
    if profile:
        result["profile"] = profile_summary(profiler.key_averages(), profile)
    return result


def _timed_batches(step, data, variant: dict, sizes: dict, indices: np.ndarray, batches: int,
                   now, profiler) -> tuple[int, float]:
    """Warm up on 4 rows, then train `batches` batches inside `profiler`; the frames and
    seconds they took."""
    frames, seconds, tf = 0, 0.0, variant["tf"]
    if variant["layout"] == "lanes":
        plan = LanePlan.build(indices, data.lengths, sizes["batch_size"], batches + 2)
        warmup = plan.batch(data, 0, slice(0, 4))  # 4 lanes of batch 0 warm up
        step.run(warmup, tf, warmup.num_steps)
        memory = None
        with profiler:
            for number in range(1, min(len(plan), batches + 1)):
                batch = plan.batch(data, number)
                began = now()
                _, memory = step.run(batch, tf, plan.batch_steps(number), memory)
                seconds += now() - began
                frames += batch.num_steps
    else:
        warmup = data.batch(indices[:4])
        step.run(warmup, tf, warmup.num_steps)
        with profiler:
            for number in range(1, batches + 1):
                chosen = indices[number * sizes["batch_size"]:(number + 1) * sizes["batch_size"]]
                batch = data.batch(chosen)
                began = now()
                step.run(batch, tf, batch.num_steps)
                seconds += now() - began
                frames += batch.num_steps
    return frames, seconds


def variants(setting: str, device: str = "cpu") -> dict[str, dict]:
    """The variants measured at a setting, by label (on a GPU, the CPU's bf16 ones are left
    out: training there uses float16 mixed precision anyway)."""
    if setting == "p":
        return {"TC": dict(NEW, tc=True, tf=True), "BC": dict(NEW, tc=False, tf=True),
                "TC per-episode fp32": dict(OLD, tc=True, tf=True),
                "BC per-episode fp32": dict(OLD, tc=False, tf=True)}
    chosen = {"TC teacher-forced": dict(NEW, tc=True, tf=True),
              "TC autoregressive": dict(NEW, tc=True, tf=False),
              "TC teacher-forced, cpu bf16": dict(MIXED, tc=True, tf=True),
              "TC autoregressive, cpu bf16": dict(MIXED, tc=True, tf=False),
              "TC teacher-forced, per-episode cpu bf16": dict(MIXED_EPISODES, tc=True, tf=True),
              "TC teacher-forced, per-episode fp32": dict(OLD, tc=True, tf=True)}
    if device != "cpu":
        chosen = {label: v for label, v in chosen.items() if "cpu bf16" not in label}
    return chosen


def _child(setting: str, variant: dict, batches: int, threads: int, device: str,
           batch_size: int | None, profile: int = 0) -> dict:
    command = [sys.executable, "-m", "babyai.commands.bench_train", "--child",
               json.dumps({"setting": setting, "variant": variant, "batches": batches,
                           "threads": threads, "device": device, "batch_size": batch_size,
                           "profile": profile})]
    output = subprocess.run(command, capture_output=True, text=True)
    if output.returncode != 0:
        raise RuntimeError(f"benchmark of setting {setting} {variant} failed:\n{output.stderr[-2000:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(description=__doc__)
    parser.add_argument("--settings", default="b,a,p", help="comma-separated: a, b, p")
    parser.add_argument("--batches", type=positive_int, default=3, help="timed batches per run")
    parser.add_argument("--repeats", type=positive_int, default=3,
                        help="runs per variant (medians are printed)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (0: the cores the load average leaves free)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                        help="where to train (cuda: mixed precision, GPU memory and the "
                             "projected hours for the paper's frames are printed)")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help="override every setting's batch size")
    parser.add_argument("--profile", type=non_negative_int, default=0, metavar="N",
                        help="also profile each variant: time shares by operator kind and "
                             "the N most costly operators (0: off)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        result = measure(spec["setting"], spec["variant"], spec["batches"], spec["threads"],
                         spec["device"], spec["batch_size"], spec.get("profile", 0))
        print(json.dumps(result))
        return result
    threads = default_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available here")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
          f"{threads} torch thread(s); medians of {args.repeats} runs of {args.batches} batches",
          flush=True)
    report: dict[str, dict] = {}
    for setting in args.settings.split(","):
        if setting not in SETTINGS:
            raise SystemExit(f"unknown setting {setting!r}; available: {', '.join(SETTINGS)}")
        chosen = variants(setting, args.device)
        runs: dict[str, list[dict]] = {label: [] for label in chosen}
        for _ in range(args.repeats):
            for label, variant in chosen.items():
                runs[label].append(_child(setting, variant, args.batches, threads, args.device,
                                          args.batch_size, args.profile))
        fps = {label: statistics.median(r["fps"] for r in rs) for label, rs in runs.items()}
        rss = {label: max(r["peak_rss_mb"] for r in rs) for label, rs in runs.items()}
        gpu = {label: max(r["peak_gpu_mb"] for r in rs) for label, rs in runs.items()}
        report[setting] = {"fps": fps, "peak_rss_mb": rss, "peak_gpu_mb": gpu,
                           "runs": {k: [round(r["fps"], 1) for r in v] for k, v in runs.items()}}
        dims = " ".join(f"{k.split('_')[0]} {v}"
                        for k, v in setting_sizes(setting, args.batch_size).items())
        print(f"({setting}) {dims}", flush=True)
        for label in runs:
            line = f"    {label:<40} {fps[label]:7.0f} frames/s  peak RSS {rss[label] / 1024:.2f} GB"
            if args.device == "cuda":
                line += f"  peak GPU {gpu[label] / 1024:.2f} GB"
                if label.startswith("TC"):
                    line += f"  ({PAPER_FRAMES / fps[label] / 3600:,.0f} h for 7e8 frames)"
            if setting in ORIGINAL_FPS and "per-episode fp32" not in label:
                line += (f"  {fps[label] / ORIGINAL_FPS[setting]:.2f}x the original's "
                         f"{ORIGINAL_FPS[setting]:.0f}")
            print(line + f"  (runs {report[setting]['runs'][label]})", flush=True)
            if args.profile:
                print(_profile_lines(runs[label][-1]["profile"]), flush=True)
        if setting == "p":
            print(f"    TC/BC frames/s: {fps['TC'] / fps['BC']:.2f} (per-episode fp32: "
                  f"{fps['TC per-episode fp32'] / fps['BC per-episode fp32']:.2f}); "
                  f"speed-up over per-episode fp32: TC {fps['TC'] / fps['TC per-episode fp32']:.2f}x, "
                  f"BC {fps['BC'] / fps['BC per-episode fp32']:.2f}x", flush=True)
        else:
            old = fps["TC teacher-forced, per-episode fp32"]
            line = (f"    speed-up over per-episode fp32 (teacher-forced): "
                    f"{fps['TC teacher-forced'] / old:.2f}x")
            if "TC teacher-forced, cpu bf16" in fps:
                line += (f", with --cpu-precision bf16 {fps['TC teacher-forced, cpu bf16'] / old:.2f}x"
                         f" (per-episode: "
                         f"{fps['TC teacher-forced, per-episode cpu bf16'] / old:.2f}x)")
            print(line, flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} at the end", flush=True)
    return report


def _profile_lines(summary: dict) -> str:
    kinds = ", ".join(f"{kind} {share:.0%}" for kind, share in summary["kinds"].items())
    top = "; ".join(f"{name} {share:.0%}" for name, share in summary["top"])
    return f"        self CPU time: {kinds}\n        top operators: {top}"


def cli() -> int:
    return run(main)


if __name__ == "__main__":
    sys.exit(cli())
