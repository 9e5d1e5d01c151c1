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


# ----- figures that teach the traps of the algorithms -------------------------------------------------
def _spinrl_defaults(algo: str, *names: str) -> dict:
    """Default hyperparameters read from the algorithm's signature (the one source of truth), so that a
    figure drawn with "the defaults" follows them when they change."""
    import importlib
    import inspect

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    fn = getattr(importlib.import_module(f"spinrl.algos.{algo}"), algo)
    params = inspect.signature(fn).parameters
    return {name: params[name].default for name in names}


def terminated_truncated() -> Path:
    """Two episodes that end at step T: by a terminal state (no bootstrap) and by a time limit (bootstrap
    from the value of the observation really reached)."""
    fig, ax = plt.subplots(figsize=(10, 5.2))
    ax.set_xlim(-0.4, 11.6)
    ax.set_ylim(-0.5, 5.6)
    ax.set_aspect("equal")
    ax.axis("off")
    xs = [0.6, 2.4, 5.6, 7.6]
    labels = ["$s_0$", "$s_1$", "$s_{T-1}$", "$s_T$"]
    for y, ending in ((4.3, "terminated"), (1.6, "truncated")):
        color = RED if ending == "terminated" else BLUE
        for x, label in zip(xs, labels):
            ax.add_patch(plt.Circle((x, y), 0.42, facecolor="white", edgecolor=GREY, linewidth=1.5))
            ax.text(x, y, label, ha="center", va="center", fontsize=12)
        for (x0, x1), r in zip(zip(xs[:-1], xs[1:]), ["$r_0$", None, "$r_{T-1}$"]):
            if r is None:
                ax.text((x0 + x1) / 2, y, "$\\cdots$", ha="center", va="center", fontsize=16, color=GREY)
                continue
            arrow(ax, (x0 + 0.45, y), (x1 - 0.45, y), color=GREY)
            ax.text((x0 + x1) / 2, y + 0.3, r, ha="center", fontsize=11, color=GREY)
        x_end = 9.8
        arrow(ax, (xs[-1] + 0.45, y), (x_end - 0.5, y), color=color)
        ax.text((xs[-1] + x_end) / 2, y + 0.3, "$r_T$", ha="center", fontsize=11, color=color)
        if ending == "terminated":
            ax.add_patch(
                FancyBboxPatch(
                    (x_end - 0.45, y - 0.42),
                    0.9,
                    0.84,
                    boxstyle="square,pad=0",
                    facecolor=RED,
                    alpha=0.18,
                    edgecolor=RED,
                    linewidth=1.5,
                )
            )
            ax.text(x_end, y, "$s_{T+1}$", ha="center", va="center", fontsize=12)
            ax.text(x_end, y - 0.75, "terminal: no future", ha="center", fontsize=10, color=RED)
            ax.text(
                0.0,
                y + 0.95,
                "terminated  (the pole fell, the robot crashed)",
                fontsize=12,
                color=RED,
                weight="bold",
            )
            ax.text(3.0, y - 1.0, "last target:  $r_T + \\gamma \\cdot 0$", fontsize=12, color=RED)
        else:
            ax.add_patch(
                plt.Circle((x_end, y), 0.42, facecolor=BLUE, alpha=0.18, edgecolor=BLUE, linewidth=1.5)
            )
            ax.text(x_end, y, "$s_{T+1}$", ha="center", va="center", fontsize=12)
            ax.plot([x_end + 0.45, x_end + 1.5], [y, y], color=BLUE, linestyle=(0, (2, 3)), linewidth=1.6)
            ax.text(x_end + 0.5, y + 0.3, "would go on", fontsize=9, color=BLUE)
            ax.text(
                0.0,
                y + 0.95,
                "truncated  (a time limit, max_ep_len, the end of an epoch)",
                fontsize=12,
                color=BLUE,
                weight="bold",
            )
            ax.text(3.0, y - 1.0, "last target:  $r_T + \\gamma\\, V(s_{T+1})$", fontsize=12, color=BLUE)
            ax.text(
                3.0,
                y - 1.65,
                "$s_{T+1}$ is the observation really reached: a vector env has already reset the copy and\n"
                'returns the next episode\'s first observation, so take $s_{T+1}$ from info["final_obs"].',
                fontsize=9.5,
                color=GREY,
                va="top",
            )
    fig.tight_layout()
    return save(fig, "terminated_truncated")


def gae_weights() -> Path:
    """GAE(λ) as a λ-weighted average of n-step advantage estimates, on a long path and on a path that is
    cut after a few steps (the longest estimate, which bootstraps at the cut, takes the rest)."""
    # The identity the figure shows, checked on random numbers: sum_l (γλ)^l δ_{t+l} equals the weighted
    # average of the n-step estimates A^(n) = sum_{l<n} γ^l δ_{t+l} (+ the bootstrap, inside the last δ).
    rng = np.random.default_rng(0)
    gamma, lam, length = 0.99, 0.9, 6
    deltas = rng.normal(size=length)
    gae = sum((gamma * lam) ** k * deltas[k] for k in range(length))
    n_step = [sum(gamma**k * deltas[k] for k in range(n)) for n in range(1, length + 1)]
    weights = [(1 - lam) * lam ** (n - 1) for n in range(1, length)] + [lam ** (length - 1)]
    assert abs(gae - sum(w * a for w, a in zip(weights, n_step))) < 1e-12

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"width_ratios": [1.5, 1]})
    n = np.arange(1, 31)
    for lam_i, color in ((0.5, GREEN), (0.9, BLUE), (0.97, ORANGE)):
        left.plot(
            n,
            (1 - lam_i) * lam_i ** (n - 1),
            "o-",
            color=color,
            markersize=3.5,
            linewidth=1.4,
            label=f"$\\lambda$ = {lam_i}",
        )
    left.set_xlabel("n: steps before the estimate bootstraps with $V$")
    left.set_ylabel("weight of $\\hat A^{(n)}_t$")
    left.set_title("a long path: weights $(1-\\lambda)\\lambda^{n-1}$", fontsize=11)
    left.legend(frameon=False)
    left.text(
        14,
        0.32,
        "$\\lambda = 0$: only $\\hat A^{(1)} = \\delta_t$ (low variance, biased)\n"
        "$\\lambda = 1$: only $\\hat A^{(\\infty)}$, the return minus $V(s_t)$\n(unbiased, high variance)",
        fontsize=9,
        color=GREY,
        va="top",
    )
    ns = np.arange(1, length + 1)
    colors = [BLUE] * (length - 1) + [ORANGE]
    right.bar(ns, weights, color=colors, alpha=0.8)
    for x, w in zip(ns, weights):
        right.text(x, w + 0.01, f"{w:.2f}", ha="center", fontsize=9)
    right.set_xticks(ns)
    right.set_xlabel("n")
    right.set_title(f"a path cut {length} steps after $t$ ($\\lambda$ = {lam})", fontsize=11)
    right.text(
        length - 0.1,
        weights[-1] + 0.07,
        "the rest, $\\lambda^{5}$:\nthe estimate that reaches\nthe cut and bootstraps there",
        ha="right",
        fontsize=9,
        color=ORANGE,
    )
    right.set_ylim(0, 0.8)
    fig.tight_layout()
    return save(fig, "gae_weights")


def trpo_step() -> Path:
    """TRPO's step in a 2-D parameter space: the KL ellipse of the quadratic model, the gradient and the
    natural gradient, and the backtracking points checked against the exact KL."""
    delta = 0.01
    d = _spinrl_defaults("trpo", "backtrack_coeff", "backtrack_iters")
    coeff, tries = d["backtrack_coeff"], d["backtrack_iters"]
    h = np.array([[4.0, 0.6], [0.6, 1.0]])  # the KL's Hessian (Fisher matrix) at θ_k
    g = np.array([1.0, 1.0])  # the policy gradient

    def quadratic_kl(d: np.ndarray) -> np.ndarray:
        return 0.5 * np.einsum("...i,ij,...j->...", d, h, d)

    def exact_kl(d: np.ndarray) -> np.ndarray:
        # Made up for the picture: the real KL grows faster than its quadratic model on one side.
        return quadratic_kl(d) * (1 + 12.0 * np.clip(d[..., 1], 0, None))

    x = np.linalg.solve(h, g)  # the natural gradient direction H^-1 g
    full = np.sqrt(2 * delta / (x @ h @ x)) * x  # the step that reaches the ellipse
    plain = np.sqrt(2 * delta / (g @ h @ g)) * g  # the plain gradient, scaled to the same model KL

    fig, ax = plt.subplots(figsize=(9.2, 5.4))
    lim = 0.17
    grid = np.linspace(-lim, lim, 500)
    xx, yy = np.meshgrid(grid, grid)
    pts = np.stack([xx, yy], axis=-1)
    ax.contourf(xx, yy, quadratic_kl(pts), levels=[0, delta], colors=[BLUE], alpha=0.12)
    ax.contour(xx, yy, quadratic_kl(pts), levels=[delta], colors=[BLUE], linewidths=1.6)
    ax.contour(xx, yy, exact_kl(pts), levels=[delta], colors=[RED], linewidths=1.4, linestyles="--")
    for level in np.linspace(-0.4, 0.4, 17):  # level lines of the linear surrogate g·Δ
        ax.plot(grid, (level - g[0] * grid) / g[1], color=GREY, linewidth=0.5, alpha=0.5)
    ax.annotate("", xy=plain, xytext=(0, 0), arrowprops=dict(arrowstyle="-|>", color=GREY, lw=1.6))
    ax.text(plain[0] + 0.006, plain[1] - 0.012, "gradient $g$", color=GREY, fontsize=10)
    ax.annotate("", xy=full, xytext=(0, 0), arrowprops=dict(arrowstyle="-|>", color=BLUE, lw=2))
    ax.text(
        full[0] - 0.008, full[1] + 0.01, "natural gradient $H^{-1}g$", color=BLUE, fontsize=10, ha="right"
    )
    accepted = None
    for j in range(tries):
        point = coeff**j * full
        if accepted is None and exact_kl(point) <= delta:
            accepted = j
        if accepted is not None and j > accepted:
            break  # the line search stops at the first step that passes
        ax.plot(*point, "o", color=GREEN if j == accepted else RED, markersize=7, zorder=5)
    ax.annotate(
        f"accepted: $j$ = {accepted}",
        xy=coeff**accepted * full,
        xytext=(0.045, 0.1),
        color=GREEN,
        fontsize=10,
        arrowprops=dict(arrowstyle="-", color=GREEN),
    )
    ax.plot(0, 0, "ko", markersize=5)
    ax.text(0.006, -0.016, "$\\theta_k$", fontsize=12)
    ax.set_xlabel("$\\Delta_1$")
    ax.set_ylabel("$\\Delta_2$")
    ax.set_aspect("equal")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.text(
        1.05,
        0.5,
        "blue: $\\frac{1}{2}\\Delta^\\top H \\Delta \\leq \\delta$, the quadratic model\n"
        "of the KL; the full step ends on it\n\n"
        "dashed red: where the exact KL $= \\delta$\n\n"
        f"dots: $\\alpha^j$ times the full step,\n$\\alpha$ = backtrack_coeff = {coeff};\n"
        "red: the exact KL is too large\n\n"
        "grey lines: level lines of the\nsurrogate $g^\\top\\Delta$; the gradient $g$\n"
        "is steepest in plain distance,\n$H^{-1}g$ per unit of KL",
        transform=ax.transAxes,
        fontsize=9.5,
        va="center",
    )
    fig.tight_layout()
    return save(fig, "trpo_step")


def td3_smoothing() -> Path:
    """A critic with a narrow, wrong peak; the target policy sits on it; target policy smoothing averages
    Q over clipped noise around the target action, which flattens the peak."""
    d = _spinrl_defaults("td3", "target_noise", "noise_clip")
    sigma, c = d["target_noise"], d["noise_clip"]
    a = np.linspace(-1, 1, 801)

    def q(x: np.ndarray) -> np.ndarray:
        return 1.0 - 1.5 * (x - 0.35) ** 2 + 1.6 * np.exp(-(((x + 0.45) / 0.025) ** 2))

    # E_ε[Q(clip(a + clip(ε, -c, c), -1, 1))], ε ~ N(0, σ²), by quadrature on a fine grid of ε; the mass
    # beyond ±c sits on ±c, as the clip puts it there.
    eps = np.linspace(-c, c, 2001)
    dens = np.exp(-0.5 * (eps / sigma) ** 2)
    dens *= (1 - _normal_tail(c / sigma) * 2) / np.trapezoid(dens, eps)
    smoothed = np.array(
        [
            np.trapezoid(dens * q(np.clip(x + eps, -1, 1)), eps)
            + _normal_tail(c / sigma) * (q(np.clip(x - c, -1, 1)) + q(np.clip(x + c, -1, 1)))
            for x in a
        ]
    )
    mu = -0.45
    fig, ax = plt.subplots(figsize=(8.4, 4.4))
    ax.plot(a, q(a), color=RED, linewidth=1.6, label="the critic $Q(s', a)$, with a narrow wrong peak")
    ax.plot(
        a,
        smoothed,
        color=BLUE,
        linewidth=2,
        label="what the target sees: $\\mathbb{E}_\\epsilon[Q(s', a + \\mathrm{clip}(\\epsilon))]$",
    )
    ax.axvline(mu, color=GREY, linewidth=1, linestyle=":")
    i = np.argmin(abs(a - mu))
    ax.plot(mu, q(a)[i], "o", color=RED)
    ax.plot(mu, smoothed[i], "o", color=BLUE)
    ax.annotate(
        "without smoothing the target\nbelieves the peak",
        xy=(mu, q(a)[i]),
        xytext=(-0.98, 2.05),
        fontsize=9,
        color=RED,
        arrowprops=dict(arrowstyle="-", color=RED),
    )
    # The noise around the target action, drawn on the floor of the plot.
    floor = -1.05
    shown = np.linspace(-c, c, 200)
    ax.fill_between(
        mu + shown,
        floor,
        floor + 0.5 * np.exp(-0.5 * (shown / sigma) ** 2),
        color=GREY,
        alpha=0.25,
        linewidth=0,
    )
    ax.text(
        mu + c + 0.02,
        floor + 0.05,
        f"noise: $\\sigma$ = {sigma}, clipped at $\\pm${c}\n(target_noise, noise_clip; half-range units)",
        fontsize=9,
        color=GREY,
    )
    ax.text(mu - 0.02, floor - 0.22, "$\\mu_{\\theta_{targ}}(s')$", ha="center", fontsize=10)
    ax.set_xlim(-1, 1)
    ax.set_ylim(floor - 0.3, 2.4)
    ax.set_xlabel("action $a$ (normalised to $[-1, 1]$)")
    ax.set_ylabel("value")
    ax.legend(frameon=False, loc="upper right", fontsize=9)
    fig.tight_layout()
    return save(fig, "td3_smoothing")


def _normal_tail(z: float) -> float:
    """P(ε > zσ) for a standard normal, without scipy."""
    import math

    return 0.5 * math.erfc(z / math.sqrt(2))


def offpolicy_schedule() -> Path:
    """DQN's ε schedule over env steps, with the phases set by start_steps and update_after; and, zoomed in,
    the gradient steps that update_every and steps_per_update give."""
    d = _spinrl_defaults(
        "dqn",
        "start_steps",
        "update_after",
        "update_every",
        "epsilon_start",
        "epsilon_end",
        "epsilon_decay_steps",
    )
    start, after, every = d["start_steps"], d["update_after"], d["update_every"]
    decay, e0, e1 = d["epsilon_decay_steps"], d["epsilon_start"], d["epsilon_end"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8.6, 6.0), gridspec_kw={"height_ratios": [1.1, 1]})
    t = np.linspace(0, start + 1.6 * decay, 1000)
    eps = e0 + np.clip((t - start) / decay, 0, 1) * (e1 - e0)
    top.plot(
        t[t >= start], eps[t >= start], color=BLUE, linewidth=2, label="$\\varepsilon$-greedy: $\\varepsilon$"
    )
    top.axvspan(0, start, color=ORANGE, alpha=0.15, linewidth=0)
    top.text(
        start / 2, 0.55, f"start_steps = {start:,}:\nuniformly random actions", ha="center", fontsize=9.5
    )
    top.axvline(after, color=GREEN, linewidth=1.4)
    top.text(after + 200, 0.15, f"update_after = {after:,}:\nupdates begin", fontsize=9, color=GREEN)
    top.annotate(
        "",
        xy=(start + decay, e1 + 0.12),
        xytext=(start, e1 + 0.12),
        arrowprops=dict(arrowstyle="<->", color=GREY),
    )
    top.text(
        start + decay / 2, e1 + 0.16, f"epsilon_decay_steps = {decay:,}", ha="center", fontsize=9, color=GREY
    )
    top.text(start + 1.05 * decay, e1 + 0.02, f"epsilon_end = {e1}", fontsize=9, color=BLUE, va="bottom")
    top.set_ylim(0, 1.08)
    top.set_ylabel("$\\varepsilon$")
    top.set_xlabel("env steps (over all copies)")
    top.set_title("DQN's exploration schedule, with its defaults", fontsize=11)

    steps = np.arange(after - 3 * every, after + 8 * every + 1)
    for spu, color in ((1, BLUE), (2, ORANGE)):
        # A group runs when the step count reaches a multiple of update_every, once update_after
        # transitions are stored: count those multiples up to each step.
        groups = np.where(steps >= after, steps // every - (after - 1) // every, 0)
        bottom.step(
            steps,
            groups * (every // spu),
            where="post",
            color=color,
            linewidth=1.8,
            label=f"steps_per_update = {spu}: {every // spu} gradient steps per group",
        )
    bottom.axvline(after, color=GREEN, linewidth=1.4)
    bottom.set_xlabel("env steps")
    bottom.set_ylabel("gradient steps so far")
    bottom.set_title(
        f"zoomed in: after every update_every = {every} env steps, a group of updates", fontsize=11
    )
    bottom.legend(frameon=False, fontsize=9, loc="upper left")
    fig.tight_layout()
    return save(fig, "offpolicy_schedule")


def steps_split() -> Path:
    """How steps_per_epoch is shared by MPI ranks and env copies, and what an epoch's end does to episodes."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from spinrl.envs.vector import steps_per_copy

    total, ranks, copies = 4000, 2, 4
    per_copy = steps_per_copy(total, copies, ranks)
    fig, ax = plt.subplots(figsize=(9.4, 4.6))
    ax.set_xlim(-3.8, 11.0)
    ax.set_ylim(-1.4, 7.6)
    ax.axis("off")
    rng = np.random.default_rng(3)
    x0, width = 0.0, 8.0
    for r in range(ranks):
        top = 6.8 - r * 3.5
        box(ax, 3.75, top - 1.2, 9.1, 3.05, "", GREY, alpha=0.07)
        ax.text(-3.7, top - 0.9, f"MPI rank {r}", fontsize=11, weight="bold")
        ax.text(
            -3.7, top - 1.3, f"{copies} x {per_copy} = {copies * per_copy:,} steps", fontsize=9, color=GREY
        )
        for k in range(copies):
            y = top - 0.45 - k * 0.62
            ax.add_patch(
                FancyBboxPatch(
                    (x0, y - 0.18),
                    width,
                    0.36,
                    boxstyle="square,pad=0",
                    facecolor=BLUE,
                    alpha=0.25,
                    linewidth=0,
                )
            )
            ax.text(x0 - 0.15, y, f"copy {k}", ha="right", va="center", fontsize=9)
            ends = np.sort(rng.uniform(0.4, width - 0.3, size=rng.integers(1, 4)))
            for e in ends:  # episodes that end inside the epoch
                ax.plot([x0 + e, x0 + e], [y - 0.2, y + 0.2], color=RED, linewidth=1.6)
            ax.plot([x0 + width, x0 + width + 1.0], [y, y], color=BLUE, linestyle=(0, (2, 2)), linewidth=1.4)
        ax.text(x0 + width / 2, top + 0.05, f"{per_copy} steps per copy", ha="center", fontsize=9, color=BLUE)
    ax.plot([x0 + width] * 2, [-0.6, 7.2], color="black", linewidth=1.2)
    ax.text(x0 + width + 0.1, 7.25, "end of the epoch", fontsize=9)
    ax.text(
        x0 + width + 1.1,
        3.2,
        "episodes go on\ninto the next\nepoch; the cut\npath bootstraps\nwith $V$",
        fontsize=9,
        color=BLUE,
        va="center",
    )
    ax.text(
        -3.7,
        -1.1,
        f"steps_per_epoch = {total:,}, --cpu {ranks}, --num_envs {copies}: each of the {ranks * copies} copies takes "
        f"{total:,} // {ranks * copies} = {per_copy} steps.   Red ticks: episodes ending.",
        fontsize=9.5,
    )
    fig.tight_layout()
    return save(fig, "steps_split")


FIGURES: dict[str, Callable[[], Path | None]] = {
    "agent_env_loop": agent_env_loop,
    "taxonomy": taxonomy,
    "ppo_clip": ppo_clip,
    "sac_squash": sac_squash,
    "learning_curves": learning_curves,
    "terminated_truncated": terminated_truncated,
    "gae_weights": gae_weights,
    "trpo_step": trpo_step,
    "td3_smoothing": td3_smoothing,
    "offpolicy_schedule": offpolicy_schedule,
    "steps_split": steps_split,
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
