"""LCD's EMA target network: the update rule, its travel inside the optimiser state, its use."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cfld.training.ema_target import STATE_KEY, EMATarget


class _Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.unet = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unet(x)


def test_update_is_the_lcd_rule_and_only_after_real_steps():
    torch.manual_seed(0)
    model = _Model()
    ema = EMATarget(model.unet, 0.9)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    ema.attach(opt)
    start = [p.detach().clone() for p in model.unet.parameters()]
    model.train()(torch.randn(5, 3)).square().sum().backward()
    opt.step()
    for t, p0, p1 in zip(ema.unet.parameters(), start, model.unet.parameters(), strict=True):
        torch.testing.assert_close(t, 0.9 * p0 + 0.1 * p1.detach())  # θ⁻ ← μθ⁻ + (1 − μ)θ
    assert torch.equal(ema.unet[1].running_mean, model.unet[1].running_mean)  # buffers copied
    assert not any(p.requires_grad for p in ema.unet.parameters())
    assert all(n.startswith("unet.") for n, _ in model.named_parameters())  # θ⁻ not in the tree
    with pytest.raises(ValueError, match="ema_decay"):
        EMATarget(model.unet, 1.0)


def test_it_travels_inside_the_optimiser_state_and_restores_exactly():
    torch.manual_seed(1)
    model = _Model()
    ema, opt = EMATarget(model.unet, 0.95), torch.optim.Adam(model.parameters(), lr=0.1)
    ema.attach(opt)
    for _ in range(3):
        opt.zero_grad()
        model.train()(torch.randn(5, 3)).square().sum().backward()
        opt.step()
    state = opt.state_dict()
    assert STATE_KEY in state and state[STATE_KEY]["decay"] == 0.95
    fresh = _Model()
    fresh.load_state_dict(model.state_dict())
    ema2, opt2 = EMATarget(fresh.unet, 0.95), torch.optim.Adam(fresh.parameters(), lr=0.1)
    ema2.attach(opt2)
    assert not torch.equal(ema2.unet[0].weight, ema.unet[0].weight)  # θ⁻ ≠ θ after 3 steps
    opt2.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in
               zip(ema2.unet.state_dict().values(), ema.unet.state_dict().values(), strict=True))
    other, opt3 = EMATarget(_Model().unet, 0.5), torch.optim.Adam(fresh.parameters())
    other.attach(opt3)
    with pytest.raises(ValueError, match="EMA decay is 0.95"):
        opt3.load_state_dict(opt.state_dict())
    plain = torch.optim.Adam(model.parameters())
    plain.load_state_dict(torch.optim.Adam(model.parameters()).state_dict())
    ema4 = EMATarget(model.unet, 0.95)
    opt4 = torch.optim.Adam(model.parameters())
    ema4.attach(opt4)
    with pytest.raises(ValueError, match="no EMA target"):
        opt4.load_state_dict(plain.state_dict())


def test_in_place_of_swaps_the_unet_for_the_call_only():
    torch.manual_seed(2)
    model = _Model().eval()
    ema = EMATarget(model.unet, 0.5)
    with torch.no_grad():
        ema.unet[0].weight.add_(1.0)
        x = torch.randn(2, 3)
        with ema.in_place_of(model) as net:
            got = net(x)
        assert torch.equal(got, ema.unet(x)) and not torch.equal(got, model(x))
    assert model.unet is not ema.unet
