"""Draw the picture of the two-level agent at one step (media/thought_cloning.png)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

from babyai.common.cli import run  # noqa: E402
from babyai.common.flags import Parser  # noqa: E402


def main(argv: Sequence[str] | None = None) -> Path:
    parser = Parser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("media/thought_cloning.png"),
                        help="the PNG to write")
    out = parser.parse_args(argv).out
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(10, 4.6), dpi=110)
    ax.set_xlim(0, 10); ax.set_ylim(0, 4.6); ax.axis("off")

    def box(x, y, w, h, text, color):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05,rounding_size=0.12",
                                    fc=color, ec="#333333", lw=1.2))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=10, wrap=True)

    def arrow(x1, y1, x2, y2, label="", dy=0.12):
        ax.annotate("", xy=(x2, y2), xytext=(x1, y1), arrowprops=dict(arrowstyle="->", lw=1.4, color="#333"))
        if label:
            ax.text((x1 + x2) / 2, (y1 + y2) / 2 + dy, label, ha="center", fontsize=8.5, color="#444")

    box(0.2, 3.2, 2.2, 1.0, "observation\n(7x7 egocentric view)", "#e8eef7")
    box(0.2, 1.7, 2.2, 1.0, 'mission\n"put the red ball next to\nthe blue door"', "#e8eef7")
    box(0.2, 0.2, 2.2, 1.0, "thought history\n(previous thoughts)", "#e8eef7")
    box(3.4, 2.9, 2.6, 1.3, "Upper level\n(thought generator)\nFiLM + LSTM memory\n+ LSTM decoder", "#fde7c8")
    box(3.4, 0.5, 2.6, 1.3, "Lower level\n(action policy)\nFiLM + LSTM memory\n+ actor", "#d8f0d8")
    box(7.0, 2.9, 2.8, 1.3, 'thought\n"pickup red ball to complete\nPutNext mission"', "#fff6d6")
    box(7.0, 0.5, 2.8, 1.3, "action\nleft / right / forward /\npickup / drop / toggle / done", "#eaf7ea")
    arrow(2.4, 3.7, 3.4, 3.6); arrow(2.4, 2.2, 3.4, 3.2); arrow(2.4, 0.7, 3.4, 3.0)
    arrow(2.4, 3.6, 3.4, 1.5); arrow(2.4, 2.1, 3.4, 1.2)
    arrow(6.0, 3.55, 7.0, 3.55, "generate")
    arrow(6.0, 1.15, 7.0, 1.15, "act")
    ax.annotate("", xy=(4.7, 1.8), xytext=(7.6, 2.9),
                arrowprops=dict(arrowstyle="->", lw=1.4, color="#b5651d", connectionstyle="arc3,rad=-0.25"))
    ax.text(6.35, 2.35, "the lower level reads\nthe current thought", fontsize=8.5, color="#b5651d", ha="center")
    ax.text(5.0, 4.42, "Thought Cloning: imitate the demonstrator's thoughts (loss on thought tokens) and actions (loss on actions)",
            ha="center", fontsize=9.5, style="italic")
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)
    return out


def cli() -> int:
    return run(main)


if __name__ == "__main__":
    sys.exit(cli())
