"""Where a training step's time goes: torch.profiler's operators grouped into a few categories.

Notebook 08 reads the shares against Amdahl's law: speeding up convolutions 2x speeds up the
whole step by at most 1 / ((1 - p) + p / 2), where p is the convolutions' share.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from helpers.timing import sgd_step
from helpers.validate import check_int

__all__ = ["profile_categories"]

# Profiler op names -> what they are. The first matching pattern wins.
_CATEGORIES = (
    ("convolution", ("conv", "mkldnn_convolution")),
    ("batch norm", ("batch_norm",)),
    ("optimizer", ("sgd", "_foreach", "optimizer")),
    ("elementwise (ReLU, add)", ("relu", "threshold", "add", "mul")),
    ("loss and pooling", ("cross_entropy", "nll", "log_softmax", "mean", "avg_pool", "addmm")),
)


def _category(op_name: str) -> str:
    name = op_name.lower()
    for category, patterns in _CATEGORIES:
        if any(p in name for p in patterns):
            return category
    return "other"


def profile_categories(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 3
) -> tuple[dict[str, float], str]:
    """Profile ``steps`` SGD training steps of ``model`` on x: (B, C, H, W), y: (B,).

    Returns (share of self CPU time per category: convolution, batch norm, optimizer,
    elementwise, loss and pooling, other; summing to 1) and torch.profiler's table of the
    eight operators with the most self time. One untimed step first (allocator warm-up).
    """
    check_int("steps", steps, 1)
    step = sgd_step(model, x, y)

    model.train()
    step()
    activities = [ProfilerActivity.CPU]
    if x.is_cuda:
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
    events = prof.key_averages()
    totals: dict[str, float] = {}
    for event in events:
        if event.key.startswith("ProfilerStep") or event.key.startswith("autograd::engine"):
            continue
        category = _category(event.key)
        totals[category] = totals.get(category, 0.0) + event.self_cpu_time_total
    total = sum(totals.values()) or 1.0
    shares = {k: v / total for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}
    table = events.table(sort_by="self_cpu_time_total", row_limit=8, max_name_column_width=40)
    return shares, table
