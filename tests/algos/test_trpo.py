import torch

from spinrl.algos.trpo import conjugate_gradient


def test_conjugate_gradient_solves_spd_system():
    torch.manual_seed(0)
    m = torch.randn(6, 6, dtype=torch.float64)
    A = m @ m.T + 6 * torch.eye(6, dtype=torch.float64)  # symmetric positive definite
    b = torch.randn(6, dtype=torch.float64)
    x = conjugate_gradient(lambda v: A @ v, b, iters=20)
    torch.testing.assert_close(A @ x, b, rtol=1e-6, atol=1e-6)


def test_conjugate_gradient_known_2x2():
    A = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    b = torch.tensor([1.0, 2.0], dtype=torch.float64)
    x = conjugate_gradient(lambda v: A @ v, b, iters=2)  # exact in n = 2 steps
    torch.testing.assert_close(x, torch.tensor([1 / 11, 7 / 11], dtype=torch.float64))
