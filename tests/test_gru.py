"""The from-scratch GRU equals torch.nn.GRU with the same weights copied in, on both of its loops (C and Python).

Its T = 5 run, the contract check and the ban on library recurrent modules are the table-wide tests
(tests/test_palindrome_runner.py, tests/test_models.py), which take every row of MODELS.
"""

from __future__ import annotations

import pytest
import torch

from models.gru import GATES, GRU, KERNEL, _GRUSequence
from tests.conftest import use_loop
from tests.test_models import make_input


@pytest.fixture(params=["c", "python"])
def gru_loop(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    use_loop(monkeypatch, KERNEL, request.param)
    return request.param


def torch_gru_like(model: GRU) -> tuple[torch.nn.GRU, torch.nn.Linear]:
    """nn.GRU (the same gate order r, z, n) + Linear head holding our equation weights."""
    ref = torch.nn.GRU(model.input_dim, model.hidden, batch_first=True).double()
    head = torch.nn.Linear(model.hidden, model.num_classes).double()
    with torch.no_grad():
        ref.weight_ih_l0.copy_(torch.cat([model.W_rx, model.W_zx, model.W_nx]))
        ref.weight_hh_l0.copy_(torch.cat([model.W_rh, model.W_zh, model.W_nh]))
        ref.bias_ih_l0.copy_(torch.cat([model.b_rx, model.b_zx, model.b_nx]))
        ref.bias_hh_l0.copy_(torch.cat([model.b_rh, model.b_zh, model.b_nh]))
        head.weight.copy_(model.W_ph)
        head.bias.copy_(model.b_p)
    return ref, head


@pytest.mark.parametrize("encoding", ["scalar", "onehot"])
@pytest.mark.parametrize("return_hidden", [False, True])
def test_gru_matches_torch_gru(encoding: str, return_hidden: bool, gru_loop: str) -> None:
    torch.manual_seed(0)
    x, y = make_input(encoding)
    model = GRU(x.shape[-1], hidden=12).double()
    with torch.no_grad():  # non-zero biases everywhere, so every bias's path (b_nh inside r's product) is checked
        for bias in (model.b_x, model.b_h, model.b_p):
            bias.normal_()
    ref, head = torch_gru_like(model)

    out = model(x, return_hidden=return_hidden)
    logits = out[0] if return_hidden else out
    ref_logits = head(ref(x)[0][:, -1])
    torch.testing.assert_close(logits, ref_logits, atol=1e-10, rtol=0)

    torch.nn.functional.cross_entropy(logits, y).backward()
    torch.nn.functional.cross_entropy(ref_logits, y).backward()
    H = model.hidden
    for k, gate in enumerate(GATES):
        block = slice(k * H, (k + 1) * H)
        expected = {(model.W_x, "W_x"): ref.weight_ih_l0.grad, (model.W_h, "W_h"): ref.weight_hh_l0.grad,
                    (model.b_x, "b_x"): ref.bias_ih_l0.grad, (model.b_h, "b_h"): ref.bias_hh_l0.grad}
        for (fused, name), grad in expected.items():
            torch.testing.assert_close(fused.grad[block], grad[block], atol=1e-10, rtol=0,
                                       msg=f"gradient of {name}'s {gate} block")
    torch.testing.assert_close(model.W_ph.grad, head.weight.grad, atol=1e-10, rtol=0)
    torch.testing.assert_close(model.b_p.grad, head.bias.grad, atol=1e-10, rtol=0)


def test_gru_bptt_gradients_pass_gradcheck_including_the_input(gru_loop: str) -> None:
    """The hand-written backward pass against finite differences, for both fused weights and for x (which the
    training data never needs, so the comparison above does not reach that branch)."""
    torch.manual_seed(0)
    x = torch.randn(5, 2, 3, dtype=torch.double, requires_grad=True)  # (L, B, I), time-major
    W_in = torch.randn(3 * 4, 3 + 1, dtype=torch.double, requires_grad=True)  # H = 4
    W_rec = torch.randn(3 * 4, 4 + 1, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(_GRUSequence.apply, (x, W_in, W_rec))


def test_gru_evaluation_without_grad_gives_the_training_paths_logits_bit_for_bit(gru_loop: str) -> None:
    torch.manual_seed(0)
    x, _ = make_input("onehot", batch=64, length=30)
    model = GRU(10, hidden=32)
    with torch.no_grad():
        model.b_h.normal_()
        evaluated = model(x.float())
    trained = model(x.float())
    assert trained.requires_grad and not evaluated.requires_grad
    assert torch.equal(evaluated, trained.detach())


def test_the_c_loop_gives_the_python_loops_outputs_and_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over a long sequence, in float64 to rounding and in the float32 the runs use to float32 rounding (the C
    pass is compiled with -ffast-math, so not bit for bit)."""
    torch.manual_seed(0)
    for dtype, tolerance in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        x = torch.randn(60, 16, 10, dtype=dtype, requires_grad=True)
        W_in = (0.3 * torch.randn(3 * 32, 10 + 1, dtype=dtype)).requires_grad_()
        W_rec = (0.3 * torch.randn(3 * 32, 32 + 1, dtype=dtype)).requires_grad_()
        results = []
        for loop in ("c", "python"):
            use_loop(monkeypatch, KERNEL, loop)
            h = _GRUSequence.apply(x, W_in, W_rec)
            grads = torch.autograd.grad((h * torch.linspace(-1, 1, 32, dtype=dtype)).sum(), (x, W_in, W_rec))
            results.append((h.detach(), *grads))
        for got, want in zip(*results):
            assert want.abs().max() > 1e-3  # the comparison is not between vanishing numbers
            torch.testing.assert_close(got, want, atol=tolerance * want.abs().max().item(), rtol=0)


def test_equation_names_are_views_of_the_fused_parameters() -> None:
    model = GRU(input_dim=3, hidden=5)
    assert model.W_zx.shape == (5, 3) and model.W_nh.shape == (5, 5) and model.b_nh.shape == (5,)
    with torch.no_grad():
        model.W_zh.fill_(7.0)
    assert (model.W_h[5:10] == 7.0).all()  # block 1 of r, z, n is z
    assert model.W_zh.data_ptr() == model.W_h[5:10].data_ptr()


def test_a_course_skeletons_constructor_builds_the_same_gru() -> None:
    torch.manual_seed(0)
    skeleton = GRU(5, 1, 32, 10, 128, "cpu")
    torch.manual_seed(0)
    ours = GRU(1, 32)
    assert all(torch.equal(a, b) for a, b in zip(skeleton.state_dict().values(), ours.state_dict().values()))
    assert skeleton(torch.zeros(8, 4)).shape == (8, 10)  # the skeleton's (batch, time) scalar digits
