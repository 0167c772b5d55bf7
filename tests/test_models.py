"""The from-scratch RNN and LSTM equal torch.nn.RNN / torch.nn.LSTM with the same weights copied in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from experiments.variants import MODELS, check_model
from models.lstm import KERNEL, LSTM, _LSTMSequence
from models.rnn import RNN
from tests.conftest import use_loop


@pytest.fixture(params=["c", "python"])
def lstm_loop(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test on each of the LSTM's two loops: its elementwise work in C (models/lstm_step.c), where this
    machine has a C compiler, and the Python loop, the fallback."""
    use_loop(monkeypatch, KERNEL, request.param)
    return request.param

FORBIDDEN = {"LSTM", "RNN", "GRU", "LSTMCell", "RNNCell", "GRUCell"}  # as attributes of torch.nn


def torch_lstm_like(model: LSTM) -> tuple[torch.nn.LSTM, torch.nn.Linear]:
    """nn.LSTM (gate order i, f, g, o) + Linear head holding our equation weights."""
    ref = torch.nn.LSTM(model.input_dim, model.hidden, batch_first=True).double()
    head = torch.nn.Linear(model.hidden, model.num_classes).double()
    with torch.no_grad():
        ref.weight_ih_l0.copy_(torch.cat([model.W_ix, model.W_fx, model.W_gx, model.W_ox]))
        ref.weight_hh_l0.copy_(torch.cat([model.W_ih, model.W_fh, model.W_gh, model.W_oh]))
        ref.bias_ih_l0.copy_(torch.cat([model.b_i, model.b_f, model.b_g, model.b_o]))
        ref.bias_hh_l0.zero_()
        head.weight.copy_(model.W_ph)
        head.bias.copy_(model.b_p)
    return ref, head


def make_input(encoding: str, batch: int = 6, length: int = 9) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    digits = torch.randint(0, 10, (batch, length), generator=gen)
    if encoding == "onehot":
        x = torch.nn.functional.one_hot(digits, 10).double()
    else:
        x = digits.unsqueeze(-1).double()
    return x, torch.randint(0, 10, (batch,), generator=gen)


@pytest.mark.parametrize("encoding", ["scalar", "onehot"])
@pytest.mark.parametrize("return_hidden", [False, True], ids=["fused-bptt", "autograd-steps"])
def test_lstm_matches_torch_lstm(encoding: str, return_hidden: bool, lstm_loop: str) -> None:
    torch.manual_seed(0)
    x, y = make_input(encoding)
    model = LSTM(x.shape[-1], hidden=12, forget_bias="chrono", max_len=x.shape[1]).double()
    with torch.no_grad():  # non-zero biases everywhere, so every bias's path is checked
        model.b.normal_()
        model.b_p.normal_()
    ref, head = torch_lstm_like(model)

    out = model(x, return_hidden=return_hidden)
    logits = out[0] if return_hidden else out
    ref_logits = head(ref(x)[0][:, -1])
    torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=0)

    torch.nn.functional.cross_entropy(logits, y).backward()
    torch.nn.functional.cross_entropy(ref_logits, y).backward()
    H = model.hidden
    i, f, g, o = (slice(k * H, (k + 1) * H) for k in range(4))  # torch's gate blocks
    for gate in "gifo":
        block = {"g": g, "i": i, "f": f, "o": o}[gate]
        expected = {f"W_{gate}x": ref.weight_ih_l0.grad[block], f"W_{gate}h": ref.weight_hh_l0.grad[block],
                    f"b_{gate}": ref.bias_ih_l0.grad[block]}
        for name, grad in expected.items():
            fused, k = {"x": model.W_x, "h": model.W_h}.get(name[-1], model.b), "gifo".index(gate)
            got = fused.grad[k * H : (k + 1) * H]  # the gradient of the view model.<name>
            torch.testing.assert_close(got, grad, atol=1e-5, rtol=0, msg=f"gradient of {name}")
    torch.testing.assert_close(model.W_ph.grad, head.weight.grad, atol=1e-5, rtol=0)
    torch.testing.assert_close(model.b_p.grad, head.bias.grad, atol=1e-5, rtol=0)


def test_lstm_bptt_gradients_pass_gradcheck_including_the_input(lstm_loop: str) -> None:
    """The hand-written backward pass against finite differences, for [W_x | b | W_h] and for x, which the training
    data never needs (so the comparison with torch.nn.LSTM above does not reach that branch)."""
    torch.manual_seed(0)
    x = torch.randn(5, 2, 3, dtype=torch.double, requires_grad=True)  # (L, B, I), time-major
    W = torch.randn(4 * 4, 3 + 1 + 4, dtype=torch.double, requires_grad=True)  # H = 4
    assert torch.autograd.gradcheck(_LSTMSequence.apply, (x, W))


@pytest.mark.parametrize("encoding", ["scalar", "onehot"])
def test_lstm_evaluation_without_grad_gives_the_training_paths_logits_bit_for_bit(encoding: str, lstm_loop: str
                                                                                  ) -> None:
    """Under no_grad the loop skips what only the backward pass reads; a run's evaluations (solve checks, final
    accuracy) must not move by one bit for it, in the float32 the runs use."""
    torch.manual_seed(0)
    x, _ = make_input(encoding, batch=64, length=30)
    model = LSTM(x.shape[-1], hidden=32, forget_bias="chrono", max_len=x.shape[1])
    x = x.float()
    with torch.no_grad():
        model.b.normal_()
        evaluated = model(x)
    trained = model(x)  # grad enabled: the _LSTMSequence node
    assert trained.requires_grad and not evaluated.requires_grad
    assert torch.equal(evaluated, trained.detach())


def test_the_c_loop_gives_the_python_loops_outputs_and_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    """The C kernel is a faster form of the same loop: in float64 it agrees with the Python loop to rounding, in the
    float32 the runs use to float32 rounding (not bit for bit: it computes tanh directly, the Python loop as
    2 sigmoid(2z) - 1), over a long sequence, for the weights and the input."""
    torch.manual_seed(0)
    for dtype, tolerance in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        x = torch.randn(60, 16, 10, dtype=dtype, requires_grad=True)  # (L, B, I), time-major
        W = (0.3 * torch.randn(4 * 32, 10 + 1 + 32, dtype=dtype)).requires_grad_()
        results = []
        for loop in ("c", "python"):
            use_loop(monkeypatch, KERNEL, loop)
            h = _LSTMSequence.apply(x, W)
            grad_x, grad_W = torch.autograd.grad((h * torch.linspace(-1, 1, 32, dtype=dtype)).sum(), (x, W))
            results.append((h.detach(), grad_x, grad_W))
        for got, want in zip(*results):
            assert want.abs().max() > 1e-3  # the comparison is not between vanishing numbers
            torch.testing.assert_close(got, want, atol=tolerance * want.abs().max().item(), rtol=0)


def test_without_a_c_compiler_the_lstm_runs_its_python_loop_and_says_so(tmp_path) -> None:
    """A machine without a compiler (here: CC names a program that fails) must still install and train; one line
    on stderr says which loop runs."""
    code = ("import torch; from models.lstm import KERNEL, LSTM; "
            "LSTM(10, 8)(torch.zeros(2, 5, 10)).sum().backward(); print(KERNEL.loop_name())")
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                            env={**os.environ, "CC": "false"}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "python"
    notes = [line for line in result.stderr.splitlines() if "Python loop" in line]
    assert len(notes) == 1 and "could not be built with false" in notes[0], result.stderr


def test_equation_names_are_views_of_the_fused_parameters() -> None:
    model = LSTM(input_dim=3, hidden=5)
    assert model.W_gx.shape == (5, 3) and model.W_fh.shape == (5, 5) and model.b_o.shape == (5,)
    with torch.no_grad():
        model.W_fh.fill_(7.0)
    assert (model.W_h[10:15] == 7.0).all()  # block 2 of g, i, f, o is f
    assert model.W_fh.data_ptr() == model.W_h[10:15].data_ptr()


def test_forget_bias_initialisation() -> None:
    assert (LSTM(1, 8, forget_bias=1.0).b_f == 1.0).all()
    assert (LSTM(1, 8, forget_bias=0).b_f == 0.0).all()
    chrono = LSTM(1, 64, forget_bias="chrono", max_len=50)
    assert (chrono.b_f >= 0).all() and (chrono.b_f <= torch.log(torch.tensor(49.0)) + 1e-6).all()
    torch.testing.assert_close(chrono.b_i, -chrono.b_f)
    assert chrono.b_f.std() > 0.3  # spread over time scales, not one constant
    with pytest.raises(ValueError):
        LSTM(1, 8, forget_bias="banana")


@pytest.mark.parametrize("encoding", ["scalar", "onehot"])
@pytest.mark.parametrize("return_hidden", [False, True], ids=["fused-bptt", "autograd-steps"])
def test_rnn_matches_torch_rnn(encoding: str, return_hidden: bool) -> None:
    torch.manual_seed(0)
    x, y = make_input(encoding)
    model = RNN(x.shape[-1], hidden=12).double()
    with torch.no_grad():
        model.b_h.normal_()
        model.b_p.normal_()
    ref = torch.nn.RNN(model.input_dim, model.hidden, batch_first=True, nonlinearity="tanh").double()
    head = torch.nn.Linear(model.hidden, 10).double()
    with torch.no_grad():
        ref.weight_ih_l0.copy_(model.W_hx)
        ref.weight_hh_l0.copy_(model.W_hh)
        ref.bias_ih_l0.copy_(model.b_h)
        ref.bias_hh_l0.zero_()
        head.weight.copy_(model.W_ph)
        head.bias.copy_(model.b_p)
    out = model(x, return_hidden=return_hidden)
    logits, ref_logits = (out[0] if return_hidden else out), head(ref(x)[0][:, -1])
    torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=0)
    torch.nn.functional.cross_entropy(logits, y).backward()
    torch.nn.functional.cross_entropy(ref_logits, y).backward()
    for mine, theirs in [(model.W_hx, ref.weight_ih_l0), (model.W_hh, ref.weight_hh_l0), (model.b_h, ref.bias_ih_l0),
                         (model.W_ph, head.weight), (model.b_p, head.bias)]:
        torch.testing.assert_close(mine.grad, theirs.grad, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_of_the_table_keeps_the_contract_the_runner_and_figures_use(name: str) -> None:
    """experiments/variants.py's contract, for each row: last-step logits, and every h(t) on the graph."""
    model = MODELS[name].build(10, 4, forget_bias="1.0", T=8)
    x = torch.randn(2, 7, 10)
    logits, hiddens = model(x, return_hidden=True)
    assert logits.shape == (2, 10) and len(hiddens) == 7 and all(h.shape == (2, 4) for h in hiddens)
    torch.testing.assert_close(logits, model(x))  # both paths give the same logits
    grads = torch.autograd.grad(logits.sum(), hiddens)
    assert grads[0].abs().sum() > 0  # the first step reaches the loss
    assert check_model(MODELS[name]) is None


def test_a_row_that_breaks_the_contract_stops_at_import_in_one_line() -> None:
    """Say a new model's forward has no return_hidden: every entry point (runner, figures, tests) stops when it imports
    the table, with one line naming the row and what is missing, not in the middle of `make figures`."""
    code = ("import models.rnn as rnn; rnn.RNN.forward = lambda self, x: self.W_hx.new_zeros(len(x), 10); "
            "import experiments.variants")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "MODELS row 'rnn'" in result.stderr and "return_hidden" in result.stderr


def test_no_library_recurrent_modules_in_models() -> None:
    """No nn.LSTM / nn.RNN / nn.GRU or cells is used in code under models/ (docstrings may name them)."""
    import ast
    from pathlib import Path

    for path in (Path(__file__).resolve().parents[1] / "models").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN:
                raise AssertionError(f"{path.name}:{node.lineno} uses .{node.attr}")
            if isinstance(node, ast.ImportFrom) and any(alias.name in FORBIDDEN for alias in node.names):
                raise AssertionError(f"{path.name}:{node.lineno} imports a recurrent module")


def test_our_rmsprop_is_torchs_bit_for_bit() -> None:
    """experiments/rmsprop.py replaces torch.optim.RMSprop (whose first step imports the compiler stack): the same
    weights after every step, on the LSTM with clipped gradients, as the runner trains it."""
    from experiments.rmsprop import RMSprop

    torch.manual_seed(0)
    ours = LSTM(10, 16)
    theirs = LSTM(10, 16)
    theirs.load_state_dict(ours.state_dict())
    optimizers = (RMSprop(ours.parameters(), lr=3e-3), torch.optim.RMSprop(theirs.parameters(), lr=3e-3))
    x, y = make_input("onehot")
    for _ in range(25):
        for model, optimizer in zip((ours, theirs), optimizers):
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x.float()), y).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            optimizer.step()
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters()):
        assert torch.equal(a, b), name
    assert not torch.equal(ours.W_fh, LSTM(10, 16).W_fh)  # it trained
