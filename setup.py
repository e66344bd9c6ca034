"""Thought Cloning on BabyAI: install with `pip install -e .` (tests: `pip install -e ".[test]"`)."""
from pathlib import Path

from setuptools import find_packages, setup

README = Path(__file__).with_name("README.md")

COMMANDS = {
    "tc-make-demos": "make_agent_demos",
    "tc-make-dagger-demos": "make_dagger_demos",
    "tc-train": "train_tc",
    "tc-train-bc": "train_bc",
    "tc-train-rl": "train_rl",
    "tc-make-levels": "make_testing_levels",
    "tc-evaluate": "evaluate",
    "tc-evaluate-levels": "evaluate_levels",
    "tc-evaluate-safety": "evaluate_safety",
    "tc-visualize": "visualize",
    "tc-pipeline": "pipeline",
    "tc-study": "study",
    "tc-compare-studies": "compare_studies",
    "tc-bot-report": "bot_report",
    "tc-failure-modes": "failure_modes",
    "tc-open-loop": "open_loop",
    "tc-oracle-curve": "oracle_curve",
    "tc-bench-demos": "bench_demos",
    "tc-bench-eval": "bench_eval",
    "tc-bench-train": "bench_train",
    "tc-bench-rl": "bench_rl",
    "tc-draw-architecture": "draw_architecture",
    "tc-minari": "minari_demos",
}
"""Console commands -> modules of babyai.commands (scripts/<module>.py are shims of the same)."""

setup(
    name="thought-cloning",
    version="0.1.0",
    description="Thought Cloning: imitation learning of thinking and acting, on BabyAI",
    long_description=README.read_text(encoding="utf-8") if README.exists() else "",
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["babyai", "babyai.*"]),
    install_requires=[
        "gymnasium>=0.29",
        "minigrid>=3.0,<4",
        "torch>=2.1",
        "numpy>=1.24",
        "blosc>=1.11",
        "filelock>=3.12",
        "tensorboard>=2.12",
        "tqdm>=4.60",
        "matplotlib>=3.6",
        "pillow>=9.0",
    ],
    extras_require={"test": ["pytest>=7", "minari[hdf5]>=0.5,<0.6"],
                    "minari": ["minari[hdf5]>=0.5,<0.6"]},
    entry_points={"console_scripts": [
        f"{name} = babyai.commands.{module}:cli" for name, module in COMMANDS.items()]},
)
