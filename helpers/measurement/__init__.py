"""How fast, and what it costs: the speed and memory tables of notebooks 04, 05 and 08.

    from helpers import measurement
    measurement.precision_table({"resnet20": (make, 128)}, "bf16")  # fp32 vs autocast: time, memory
    measurement.saved_activation_bytes(model, x, amp="bf16")        # memory kept for backward
    measurement.loader_rates({"PIL": pil, "device": fast}, device)  # input pipelines side by side
    measurement.profile_categories(model, x, y)                     # where a step's time goes
    measurement.gpu_results("results/gpu")                          # the prepared GPU run's files

Every time here is a ratio of contenders measured in turns in one run. The timing loop itself
is ``helpers.timing`` (one level down, so the trainer can use it too); choosing a precision
for training is ``helpers.train.precision``.
"""

from helpers.measurement.pipeline import PILImages, epoch_rate, loader_rates, pil_loader
from helpers.measurement.precision import precision_table, saved_activation_bytes
from helpers.measurement.profile import profile_categories
from helpers.measurement.results import gpu_results

__all__ = [
    "PILImages",
    "epoch_rate",
    "gpu_results",
    "loader_rates",
    "pil_loader",
    "precision_table",
    "profile_categories",
    "saved_activation_bytes",
]
