"""Acting with an MLP actor-critic in NumPy: the same math, without PyTorch's per-call overhead.

Collecting experience runs the policy on one observation (or a few) at a time. Through a 64x64
network that is ~20 small operations, and PyTorch spends a few microseconds of dispatch on each, far
more than the arithmetic. NumPy does the same arithmetic with a fraction of the overhead, so for
:class:`spinrl.nets.MLPActorCritic` on the CPU the collection loop acts through this mirror.
It is rebuilt from the torch weights at the start of every epoch (the policy only changes in the
update), and draws its noise from torch's RNG, so seeding and resuming work exactly as before.
Any other actor-critic, an image network (its encoder is convolutional), or a GPU, falls back to
``ac.step``.

At this size the cost is the number of NumPy calls, not the arithmetic, so the mirror makes few:
the policy's and the critic's hidden layers run as one stack, arrays are reused, and the noise of a
whole epoch is drawn at once where that gives the same numbers. Every operation that touches a float
is the one the plain formula would do, in the same order, so the results are the same bit for bit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from spinrl.nets.actor_critic import LOG_2PI, MLPActorCritic, MLPCategoricalActor, MLPGaussianActor


def _identity(x: np.ndarray) -> np.ndarray:
    return x


# Activations that work in place: they overwrite the layer's array instead of allocating one.
_NUMPY_ACTIVATIONS: dict[type[nn.Module], Callable[[np.ndarray], np.ndarray]] = {
    nn.Tanh: lambda x: np.tanh(x, out=x),
    nn.ReLU: lambda x: np.maximum(x, 0.0, out=x),
    nn.Identity: _identity,
    nn.Sigmoid: lambda x: 1.0 / (1.0 + np.exp(-x)),
}

_sum, _cumsum, _add, _matmul = np.add.reduce, np.add.accumulate, np.add, np.matmul


@functools.cache
def _row_starts(rows: int, cols: int) -> np.ndarray:
    """``[0, cols, 2 cols, ...]``: where each row starts in a flat (rows, cols) array (made once, read only)."""
    return np.arange(rows) * cols


Layer = tuple[str, np.ndarray | Callable, np.ndarray | None]  # ("linear", w, b) or ("act", fn, None)


def _numpy_layers(seq: nn.Sequential) -> list[Layer] | None:
    """The layers of ``seq`` as NumPy weights (transposed: ``x @ w + b``) and activations, or None
    when it holds a module the mirror does not know or does not start with a Linear (the in-place
    activations must never write into the caller's input)."""
    layers: list[Layer] = []
    for module in seq:
        if isinstance(module, nn.Linear):
            w = module.weight.detach().cpu().numpy().T.copy()
            layers.append(("linear", w, module.bias.detach().cpu().numpy().copy()))
        elif type(module) in _NUMPY_ACTIVATIONS:
            layers.append(("act", _NUMPY_ACTIVATIONS[type(module)], None))
        else:
            return None
    return layers if layers and layers[0][0] == "linear" else None


def _chain(layers: list[Layer], outputs: list[np.ndarray | None]) -> list[Callable[[np.ndarray], np.ndarray]]:
    """``layers`` as a list of one-argument functions to apply in turn (a few Python steps fewer per
    layer than interpreting ``layers`` on every call). A Linear writes ``x @ w`` into its array in
    ``outputs`` when it has one and adds the bias there (the same float operations as ``x @ w + b``),
    else into a new array. Identity activations (the usual output layer's) are left out."""
    ops: list[Callable[[np.ndarray], np.ndarray]] = []
    for (kind, a, b), out in zip(layers, outputs):
        if kind == "act":
            if a is not _identity:
                ops.append(a)
        elif out is None:
            ops.append(lambda x, w=a, b=b: _add(_matmul(x, w), b))
        else:
            ops.append(lambda x, w=a, b=b, out=out: _add(_matmul(x, w, out=out), b, out=out))
    return ops


def _numpy_mlp_pair(
    seq_a: nn.Sequential, seq_b: nn.Sequential
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None:
    """``x -> (seq_a(x), seq_b(x))`` in NumPy, or None.

    Two MLPs with hidden layers of the same sizes and activations (the policy and the critic of
    MLPActorCritic) run their hidden layers together: the weights are stacked to shape (2, in, out),
    and one ``matmul`` of the stack does both products, each exactly as NumPy does it alone. That
    halves the NumPy calls of the hidden layers, which dominate a call on small networks such as
    CartPole's (benchmarks/results/code-measurements.md). Each network's last Linear (and what follows
    it) runs on its own; its output is a new array, so a caller may keep it. Hidden layers write into
    arrays kept from call to call, one set per batch size and dtype.
    """
    layers_a, layers_b = _numpy_layers(seq_a), _numpy_layers(seq_b)
    if layers_a is None or layers_b is None:
        return None
    last_a = max(i for i, layer in enumerate(layers_a) if layer[0] == "linear")
    last_b = max(i for i, layer in enumerate(layers_b) if layer[0] == "linear")
    hidden_a, hidden_b = layers_a[:last_a], layers_b[:last_b]
    stackable = (
        last_a > 0
        and len(hidden_a) == len(hidden_b)
        and all(
            ka == kb and (a.shape == b.shape if ka == "linear" else a is b)
            for (ka, a, _), (kb, b, _) in zip(hidden_a, hidden_b)
        )
    )
    if stackable:
        hidden = [
            ("linear", np.stack([a, b]), np.stack([ba, bb])[:, None, :])
            if kind == "linear"
            else (kind, a, None)
            for (kind, a, ba), (_, b, bb) in zip(hidden_a, hidden_b)
        ]
        tail_a, tail_b = layers_a[last_a:], layers_b[last_b:]
    else:  # run the two networks one after the other
        hidden, tail_a, tail_b = [], layers_a, layers_b
    chains: dict[tuple[int, np.dtype], tuple[list, list, list]] = {}  # per batch size and dtype

    def build(x: np.ndarray) -> tuple[list, list, list]:
        outputs, dtype = [], x.dtype
        for kind, w, _ in hidden:  # the hidden layers write into arrays kept from call to call
            if kind == "linear":
                dtype = np.result_type(dtype, w)
                outputs.append(np.empty((2, x.shape[0], w.shape[-1]), dtype))
            else:
                outputs.append(None)
        chain = (
            _chain(hidden, outputs),
            _chain(tail_a, [None] * len(tail_a)),
            _chain(tail_b, [None] * len(tail_b)),
        )
        chains[(x.shape[0], x.dtype)] = chain
        return chain

    def forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ops, ops_a, ops_b = chains.get((x.shape[0], x.dtype)) or build(x)
        for op in ops:  # with stacked hidden layers: (2, batch, width), network a's units, then b's
            x = op(x)
        a, b = (x[0], x[1]) if ops else (x, x)
        for op in ops_a:
            a = op(a)
        for op in ops_b:
            b = op(b)
        return a, b

    return forward


def numpy_policy(ac: nn.Module, device: torch.device, num_calls: int | None = None) -> Callable | None:
    """``step(obs) -> (action, value, logp)`` in NumPy for an MLPActorCritic on the CPU, else None.

    ``num_calls``, when given, is how many times ``step`` will be called, each with the same number
    of observations. A categorical policy then draws the noise of all those calls at its first one:
    torch fills a tensor of uniforms one number after another, so the numbers, and the generator's
    state afterwards, are exactly those of one small draw per call. Calling ``step`` fewer times
    would leave the generator ahead; more times is fine (the calls beyond draw as they go). A
    Gaussian policy draws per call whatever ``num_calls`` says: torch fills a large tensor of normal
    noise in another order than a small one.
    """
    if device.type != "cpu" or type(ac) is not MLPActorCritic:
        return None
    if ac.encoder is not None:  # image observations: convolutions are torch's job
        return None
    if isinstance(ac.pi, MLPCategoricalActor):
        nets = _numpy_mlp_pair(ac.pi.logits_net, ac.v.v_net)
        if nets is None:
            return None
        noise: Iterator[np.ndarray] | None = None  # started at the first call, which knows the batch size
        n_actions = [m for m in ac.pi.logits_net if isinstance(m, nn.Linear)][-1].out_features
        sample = _sample_two_actions if n_actions == 2 else _sample_categorical

        def step(obs: np.ndarray):
            nonlocal noise
            if noise is None:
                noise = _uniform_noise(num_calls or 0, obs.shape[0])
            logits, v = nets(obs)
            a, logp = sample(logits, next(noise))
            return a, v[:, 0], logp

        return step
    if isinstance(ac.pi, MLPGaussianActor):
        nets = _numpy_mlp_pair(ac.pi.mu_net, ac.v.v_net)
        if nets is None:
            return None
        log_std = ac.pi.log_std.detach().cpu().numpy().copy()
        std = np.exp(log_std)

        def step(obs: np.ndarray):
            mu, v = nets(obs)
            z = torch.randn(mu.shape).numpy()  # as MLPGaussianActor.sample: a = mu + std * z
            logp = -0.5 * _sum(z**2 + 2 * log_std + LOG_2PI, axis=-1)
            return mu + std * z, v[:, 0], logp

        return step
    return None


def _uniform_noise(num_calls: int, batch: int) -> Iterator[np.ndarray]:
    """U(0, 1) noise of shape (batch, 1) per call, from torch's generator: the noise of the first
    ``num_calls`` calls drawn at once, then one draw per call (see :func:`numpy_policy`). One
    ``torch.rand`` per epoch instead of one per step spares every step a call into torch
    (benchmarks/results/code-measurements.md)."""
    if num_calls:
        yield from torch.rand(num_calls, batch, 1).numpy()
    while True:
        yield torch.rand(batch, 1).numpy()


# Sampling from a categorical policy, as MLPCategoricalActor.sample does it: log-softmax of the logits,
# then inverse-CDF sampling with u ~ U(0, 1): the action is the number of cumulative probabilities
# below u, at most n_actions - 1 (the sums never decrease, so counting among the first n_actions - 1
# gives that cap for free). Both functions overwrite ``logits``.
def _sample_categorical(logits: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Actions and their log-probabilities for a batch of logits (rows) and uniforms (rows, 1)."""
    logits -= np.maximum.reduce(logits, -1, None, None, True)
    logp_all = logits - np.log(_sum(np.exp(logits), -1, None, None, True))
    cdf = _cumsum(np.exp(logp_all[:, :-1]), -1)
    a = _sum(cdf < u, -1)
    # log pi(a|obs) of each row: logp_all is a new C-ordered array, so row i's entry for a_i sits at
    # i * n_actions + a_i of its flat view (one take, cheaper than fancy indexing with [rows, a]).
    return a, logp_all.take(_row_starts(*logp_all.shape) + a)


def _sample_two_actions(logits: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_sample_categorical` for two actions, with the same float operations on the two columns
    in place of reductions along the rows: the max and the sum of two numbers are one ``maximum`` and
    one ``add``, the cumulative sum of one number is that number, and the count of one comparison is
    the comparison. The same results bit for bit, sooner: fewer NumPy calls on tiny arrays
    (benchmarks/results/code-measurements.md; tests/nets/test_fast_act.py checks the two agree)."""
    logits -= np.maximum(logits[:, :1], logits[:, 1:])
    probs = np.exp(logits)
    logp_all = logits - np.log(_add(probs[:, :1], probs[:, 1:]))
    a = (np.exp(logp_all[:, :1]) < u)[:, 0].astype(np.int64)
    if len(a) == 1:
        return a, logp_all.take(a)  # row 0: a's entry of the flat view
    return a, logp_all.take(_row_starts(*logp_all.shape) + a)
