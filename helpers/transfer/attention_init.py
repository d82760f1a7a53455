"""Attention modules added to a pretrained network, started so that they change nothing.

An attention module multiplies a residual branch by sigmoid gates. Freshly initialised, the
gates sit near sigmoid(0) = 0.5 (SE), and CBAM has two of them in a row (channel, then
spatial): every residual branch of the pretrained network is scaled by about 0.5 or 0.25, and
by gates that vary at random from channel to channel. The network no longer computes the
function it was pretrained for.

:func:`identity_init_attention` makes the attention start as the identity, exactly:

1. the last layer before each gate gets zero weights (and zero bias, and for CBAM's spatial
   gate a BatchNorm reset to mean 0, var 1, scale 1, shift 0), so every gate is exactly
   sigmoid(0) = 0.5 for every input: the module multiplies its input by a constant c
   (0.5 for SE, 0.25 for CBAM);
2. the BatchNorm just before the attention module (the last BN of the residual branch) gets
   its scale and shift multiplied by 1/c, so branch * c is the pretrained branch again.

The gates stay at 0.5, where the sigmoid is steepest (slope 0.25), so the attention can still
learn; a gate pushed near 1 by a large bias would start as (almost) the identity too but
learn slowly, since the sigmoid is flat there. As with zero-init residual blocks (Goyal et al.
2017), the zeroed layers get gradients from the first step and the attention grows from there.
"""

from __future__ import annotations

import torch
from torch import nn

from helpers.transfer.loading import ATTENTION

__all__ = ["attention_blocks", "identity_init_attention"]


def attention_blocks(model: nn.Module) -> dict[str, nn.Module]:
    """Blocks of ``model`` that hold an attention module ``se``: ``{block name: block}``."""
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(getattr(module, ATTENTION, None), nn.Module)
    }


def _reset_bn(bn: nn.modules.batchnorm._BatchNorm) -> None:
    bn.reset_running_stats()  # mean 0, var 1
    nn.init.ones_(bn.weight)
    nn.init.zeros_(bn.bias)


def _zero_gate_inputs(attention: nn.Module, where: str) -> int:
    """Zero the layer feeding each sigmoid gate of an attention module; returns the gate count."""
    gates = 0
    for name, module in attention.named_modules():
        if not hasattr(module, "gate"):
            continue
        last = getattr(module, "fc2", None)
        last = getattr(module, "conv", None) if last is None else last
        if last is None:
            raise TypeError(
                f"{where}.{name}: don't know which layer feeds the gate of "
                f"{type(module).__name__} (expected `fc2` or `conv`, as the modules of "
                "helpers.models.attention)"
            )
        for layer in last.modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                nn.init.zeros_(layer.weight)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
            elif isinstance(layer, nn.modules.batchnorm._BatchNorm):
                _reset_bn(layer)
        gates += 1
    if gates == 0:
        raise TypeError(f"{where}: {type(attention).__name__} has no sigmoid `gate` to initialise")
    return gates


def _last_branch_bn(block: nn.Module, where: str) -> nn.modules.batchnorm._BatchNorm:
    # The attention module sits right after the residual branch's last BN (bn3 in a
    # Bottleneck, bn2 in a BasicBlock), before the addition.
    for name in ("bn3", "bn2"):
        bn = getattr(block, name, None)
        if isinstance(bn, nn.modules.batchnorm._BatchNorm):
            return bn
    raise TypeError(f"{where}: no bn3/bn2 before its attention module")


@torch.no_grad()
def _constant_factor(attention: nn.Module, channels: int, where: str) -> float:
    """The constant c with attention(x) == c * x once the gates are zeroed (checked)."""
    was_training = attention.training
    attention.eval()
    x = torch.rand(2, channels, 5, 5) + 0.5
    ratio = attention(x) / x
    attention.train(was_training)
    c = ratio.mean().item()
    if not torch.allclose(ratio, torch.full_like(ratio, c), rtol=1e-5, atol=1e-6):
        raise RuntimeError(f"{where}: zeroed attention is not a constant factor (got {ratio})")
    return c


@torch.no_grad()
def identity_init_attention(model: nn.Module) -> list[str]:
    """Initialise every attention module so that each block computes what it did without it.

    Zeroes the layers that feed the sigmoid gates (each gate is then exactly 0.5) and folds
    the resulting constant factor (0.5 for SE, 0.25 for CBAM) into the BatchNorm before the
    module, so that a model whose backbone came from a network without attention gives the
    same outputs as that network (in eval mode; in train mode too, up to the batch statistics
    being the same). Returns the names of the initialised modules (``"layer1.0.se"``, ...).
    """
    done = []
    for name, block in attention_blocks(model).items():
        attention = getattr(block, ATTENTION)
        where = f"{name}.{ATTENTION}" if name else ATTENTION
        _zero_gate_inputs(attention, where)
        bn = _last_branch_bn(block, name)
        c = _constant_factor(attention, bn.num_features, where)
        bn.weight.div_(c)
        bn.bias.div_(c)
        done.append(where)
    if not done:
        raise ValueError("the model has no attention modules (`se`) to initialise")
    return done
