"""Draw the figures of the documentation site into docs/figures/ (SVG).

    .venv/bin/python docs/figures/make_figures.py        # all figures
    .venv/bin/python docs/figures/make_figures.py ppo_clip sac_squash
    .venv/bin/python docs/figures/make_figures.py --png /tmp/figs   # also PNG copies, to look at

``make docs`` runs this through the hook in docs/hooks.py whenever a figure is missing or older than this
script (or than the data it is drawn from); the SVG files are committed as well, so the site also builds
without running it. Everything is deterministic: fixed random seeds, no dates in the files, a fixed hash
salt for SVG ids, so drawing twice gives the same bytes.

The learning curves are read from benchmarks/results/curves/*.csv, written by benchmarks/learning_curves.py
(which trains; this script never does). Without those files that one figure is left as it is.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CURVES = ROOT / "benchmarks" / "results" / "curves"

plt.rcParams.update(
    {
        "svg.hashsalt": "spinrl-docs",  # stable ids inside the SVG
        "svg.fonttype": "path",  # glyphs as paths: the same look in every browser
        "font.size": 11,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)

BLUE, ORANGE, GREEN, GREY, RED = "#1f77b4", "#ff7f0e", "#2ca02c", "#7f7f7f", "#d62728"


PNG_COPIES: list[Path] = []  # --png DIR: also write a PNG of each figure there, to look at it


def save(fig: plt.Figure, name: str) -> Path:
    path = HERE / f"{name}.svg"
    fig.savefig(path, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    for folder in PNG_COPIES:
        fig.savefig(folder / f"{name}.png", format="png", bbox_inches="tight", dpi=110)
    plt.close(fig)
    return path


def box(
    ax, x: float, y: float, w: float, h: float, text: str, color: str, *, bold=False, size=12, alpha=0.18
):
    """A rounded box centred at (x, y) with its label."""
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2),
            w,
            h,
            boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor=color,
            edgecolor=color,
            alpha=alpha,
            linewidth=0,
        )
    )
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2),
            w,
            h,
            boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor="none",
            edgecolor=color,
            linewidth=1.6,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=size, fontweight="bold" if bold else "normal")


def arrow(ax, start, end, color="black", rad=0.0, lw=1.6):
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle="-|>",
            mutation_scale=16,
            color=color,
            linewidth=lw,
            connectionstyle=f"arc3,rad={rad}",
            shrinkA=0,
            shrinkB=0,
        )
    )


# ----- (a) the agent-environment loop ------------------------------------------------------------------
def agent_env_loop() -> Path:
    fig, ax = plt.subplots(figsize=(7.2, 3.4))
    ax.set_xlim(0, 10)
    ax.set_ylim(0.1, 4.9)
    ax.axis("off")
    box(ax, 5, 4.0, 3.2, 1.1, "Agent\npolicy $\\pi(a \\mid s)$", BLUE, size=12)
    box(ax, 5, 1.0, 3.2, 1.1, "Environment\n$s_{t+1} \\sim P(\\cdot \\mid s_t, a_t)$", GREEN, size=12)

    def path(points, color, label, label_at):
        """A polyline with an arrow head on its last segment and a label on a white patch."""
        xs, ys = zip(*points)
        ax.plot(xs[:-1], ys[:-1], color=color, lw=1.8, solid_capstyle="round")
        ax.plot(xs[-3:-1], ys[-3:-1], color=color, lw=1.8)
        arrow(ax, points[-2], points[-1], color=color, lw=1.8)
        ax.text(
            *label_at,
            label,
            ha="center",
            va="center",
            fontsize=12,
            color=color,
            bbox=dict(facecolor="white", edgecolor="none", pad=2.0),
        )

    # the action goes from the agent to the environment
    path([(6.6, 4.0), (8.2, 4.0), (8.2, 1.0), (6.62, 1.0)], BLUE, "action\n$a_t$", (8.2, 2.5))
    # the next state and the reward come back
    path(
        [(3.4, 1.15), (2.55, 1.15), (2.55, 3.85), (3.38, 3.85)], GREEN, "next\nstate\n$s_{t+1}$", (2.55, 2.5)
    )
    path([(3.4, 0.75), (1.05, 0.75), (1.05, 4.25), (3.38, 4.25)], ORANGE, "reward\n$r_t$", (1.05, 2.5))
    return save(fig, "agent_env_loop")


# ----- (b) a taxonomy of RL algorithms -----------------------------------------------------------------
def taxonomy() -> Path:
    fig, ax = plt.subplots(figsize=(9.8, 4.6))
    ax.set_xlim(0, 12.3)
    ax.set_ylim(-0.3, 6.2)
    ax.axis("off")

    def link(p, q, color="black"):
        ax.plot(
            [p[0], p[0], q[0], q[0]], [p[1], (p[1] + q[1]) / 2, (p[1] + q[1]) / 2, q[1]], color=color, lw=1.3
        )

    box(ax, 6.0, 5.6, 3.0, 0.6, "RL algorithms", "black", bold=True, alpha=0.08)
    box(ax, 3.6, 4.3, 3.0, 0.6, "Model-free RL", BLUE, bold=True)
    box(ax, 9.9, 4.3, 3.0, 0.6, "Model-based RL", GREY, bold=True)
    link((6.0, 5.3), (3.6, 4.6))
    link((6.0, 5.3), (9.9, 4.6), GREY)

    families = [
        (1.2, "Policy\noptimisation", ["VPG", "TRPO", "PPO"], BLUE),
        (3.6, "In between", ["DDPG", "TD3", "SAC"], RED),
        (6.0, "Q-learning", ["DQN"], GREEN),
    ]
    for x, name, algos, color in families:
        box(ax, x, 3.0, 2.1, 0.8, name, color, bold=True, size=11)
        link((3.6, 4.0), (x, 3.4), color)
        for i, algo in enumerate(algos):
            box(ax, x, 1.9 - 0.62 * i, 1.3, 0.46, algo, color, size=11, alpha=0.3)
        ax.plot([x, x], [2.6, 1.9 + 0.23], color=color, lw=1.0)

    for x, name in [(8.7, "Learn the\nmodel"), (11.1, "Given the\nmodel")]:
        box(ax, x, 3.0, 2.1, 0.8, name, GREY, size=11)
        link((9.9, 4.0), (x, 3.4), GREY)
    ax.text(
        9.9,
        1.6,
        "not in spinrl\n(e.g. world models, MBVE,\nAlphaZero-style planning)",
        ha="center",
        va="center",
        fontsize=10,
        color=GREY,
        style="italic",
    )
    # which data each family learns from
    ax.text(1.2, -0.05, "on-policy", ha="center", va="center", fontsize=10, color=GREY, style="italic")
    ax.plot([0.3, 2.1], [0.2, 0.2], color=GREY, lw=0.8)
    ax.plot([2.6, 7.0], [0.2, 0.2], color=GREY, lw=0.8)
    ax.text(
        4.8,
        -0.05,
        "off-policy (replay buffer)",
        ha="center",
        va="center",
        fontsize=10,
        color=GREY,
        style="italic",
    )
    return save(fig, "taxonomy")


# ----- (c) PPO's clipped objective ---------------------------------------------------------------------
def ppo_clip(eps: float = 0.2) -> Path:
    r = np.linspace(0.0, 2.0, 801)
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.6), sharex=True)
    for ax, adv, title in (
        (axes[0], 1.0, "$A > 0$ (here $A = 1$)"),
        (axes[1], -1.0, "$A < 0$ (here $A = -1$)"),
    ):
        clipped = np.minimum(r * adv, np.clip(r, 1 - eps, 1 + eps) * adv)
        ax.plot(r, r * adv, color=GREY, ls="--", lw=1.2, label="unclipped $rA$")
        ax.plot(
            r,
            clipped,
            color=BLUE,
            lw=2.4,
            label="$\\min(rA,\\ \\mathrm{clip}(r, 1-\\epsilon, 1+\\epsilon)A)$",
        )
        for x in (1 - eps, 1 + eps):
            ax.axvline(x, color=GREY, lw=0.8, ls=":")
        ax.axvline(1.0, color="black", lw=0.8)
        ax.axhline(0.0, color="black", lw=0.6)
        edge = 1 + eps if adv > 0 else 1 - eps
        ax.plot([edge], [edge * adv], "o", color=RED, ms=6, zorder=5)
        ax.set_title(title)
        ax.set_xlabel("probability ratio $r = \\pi_\\theta(a \\mid s) \\,/\\, \\pi_{\\theta_k}(a \\mid s)$")
        ax.set_xticks([0, 1 - eps, 1, 1 + eps, 2])
        ax.set_xticklabels(["0", "$1-\\epsilon$", "1", "$1+\\epsilon$", "2"])
    axes[0].set_ylabel("objective $L$ for one sample")
    axes[0].annotate(
        "flat: no gradient",
        xy=(1.6, 1.2),
        xytext=(1.25, 0.35),
        fontsize=10,
        color=RED,
        arrowprops=dict(arrowstyle="->", color=RED),
    )
    axes[1].annotate(
        "flat: no gradient",
        xy=(0.4, -0.8),
        xytext=(0.15, -0.2),
        fontsize=10,
        color=RED,
        arrowprops=dict(arrowstyle="->", color=RED),
    )
    axes[0].legend(loc="upper left", fontsize=9, frameon=False)
    fig.tight_layout()
    return save(fig, "ppo_clip")


# ----- (d) SAC's squashed Gaussian ---------------------------------------------------------------------
def sac_squash() -> Path:
    """Two Gaussians over u and the densities of a = tanh(u), by the change of variables."""
    cases = [(0.5, 0.5, BLUE), (0.0, 1.5, "#9467bd")]  # (mu, sigma, colour)
    u = np.linspace(-5.0, 5.0, 2001)
    a = np.linspace(-0.9995, 0.9995, 4001)
    rng = np.random.default_rng(0)

    def normal_pdf(x, mu, sigma):
        return np.exp(-0.5 * ((x - mu) / sigma) ** 2) / (np.sqrt(2 * np.pi) * sigma)

    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.4))
    for mu, sigma, color in cases:
        samples = rng.normal(mu, sigma, 40000)
        label = f"$\\mu={mu},\\ \\sigma={sigma}$"
        axes[0].hist(samples, bins=100, range=(-5, 5), density=True, color=color, alpha=0.15)
        axes[0].plot(u, normal_pdf(u, mu, sigma), color=color, lw=2.2, label=label)
        # change of variables: p_a(a) = p_u(atanh a) / |d tanh(u) / du| = p_u(atanh a) / (1 - a^2)
        p_a = normal_pdf(np.arctanh(a), mu, sigma) / (1 - a**2)
        axes[1].hist(np.tanh(samples), bins=100, range=(-1, 1), density=True, color=color, alpha=0.15)
        axes[1].plot(a, p_a, color=color, lw=2.2, label=label)
    axes[0].set_title("Gaussian sample $u = \\mu + \\sigma \\xi$")
    axes[0].set_xlabel("$u$")
    axes[0].set_ylabel("density")
    axes[0].legend(fontsize=9, frameon=False, loc="upper left")
    axes[1].set_title("squashed action $a = \\tanh(u) \\in (-1, 1)$")
    axes[1].set_xlabel("$a$")
    axes[1].set_xlim(-1.05, 1.05)
    axes[1].set_ylim(0, 2.0)
    axes[1].text(
        0.0, 1.8, "density $= p_u(\\mathrm{atanh}\\, a) \\,/\\, (1 - a^2)$", ha="center", fontsize=10
    )
    fig.tight_layout()
    return save(fig, "sac_squash")


# ----- (e) learning curves, from benchmarks/results/curves/*.csv --------------------------------------
ALGOS = ("vpg", "trpo", "ppo", "dqn", "ddpg", "td3", "sac")


def read_curve(path: Path) -> dict:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return dict(
        env=rows[0]["env"],
        value=rows[0]["value"],
        seeds=int(rows[0]["seeds"]),
        steps=np.array([float(r["env_steps"]) for r in rows]),
        mean=np.array([float(r["mean"]) for r in rows]),
        low=np.array([float(r["min"]) for r in rows]),
        high=np.array([float(r["max"]) for r in rows]),
    )


def learning_curves() -> Path | None:
    curves = {
        algo: read_curve(CURVES / f"{algo}.csv") for algo in ALGOS if (CURVES / f"{algo}.csv").is_file()
    }
    if not curves:
        print(f"no CSV files in {CURVES}: learning_curves.svg left as it is", file=sys.stderr)
        return None
    fig, axes = plt.subplots(2, 4, figsize=(12.0, 5.6))
    colors = {"vpg": BLUE, "trpo": BLUE, "ppo": BLUE, "dqn": GREEN, "ddpg": RED, "td3": RED, "sac": RED}
    for ax, algo in zip(axes.flat, ALGOS):
        if algo not in curves:
            ax.set_visible(False)
            continue
        c = curves[algo]
        x = c["steps"] / 1000
        ax.fill_between(x, c["low"], c["high"], color=colors[algo], alpha=0.2, linewidth=0)
        ax.plot(x, c["mean"], color=colors[algo], lw=2)
        ax.set_title(f"{algo.upper()} on {c['env']}", fontsize=11)
        ax.set_xlabel("env steps (thousands)", fontsize=9)
        label = "test return" if "Test" in c["value"] else "training return"
        ax.set_ylabel(label, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    last = axes.flat[-1]
    last.axis("off")
    seeds = max(c["seeds"] for c in curves.values())
    last.text(
        0.02,
        0.5,
        f"line: mean over {seeds} seeds\nband: lowest to highest seed\n\n"
        "training return: AverageEpRet\n(on-policy, sampled actions)\n"
        "test return: AverageTestEpRet\n(off-policy, no exploration noise)\n\n"
        "made by benchmarks/learning_curves.py",
        fontsize=9,
        va="center",
        ha="left",
        transform=last.transAxes,
    )
    fig.tight_layout()
    return save(fig, "learning_curves")


FIGURES: dict[str, Callable[[], Path | None]] = {
    "agent_env_loop": agent_env_loop,
    "taxonomy": taxonomy,
    "ppo_clip": ppo_clip,
    "sac_squash": sac_squash,
    "learning_curves": learning_curves,
}


def main(argv: list[str] | None = None) -> int:
    args = list(argv if argv is not None else sys.argv[1:])
    if "--png" in args:
        i = args.index("--png")
        folder = Path(args[i + 1])
        folder.mkdir(parents=True, exist_ok=True)
        PNG_COPIES.append(folder)
        del args[i : i + 2]
    names = args or list(FIGURES)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        print(f"unknown figure(s) {unknown}; known: {', '.join(FIGURES)}", file=sys.stderr)
        return 2
    for name in names:
        np.random.seed(0)
        path = FIGURES[name]()
        if path is not None:
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
