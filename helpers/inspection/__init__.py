"""Look inside a network: its structure, its gradients, its attention, its calibration.

    from helpers import inspection
    inspection.count_parameters(model)                    # structure: parameters, multiply-adds,
    inspection.macs_per_stage(model, (1, 3, 224, 224))    #   shapes, per stage
    inspection.gradient_norms(model, x, y)                # gradients: one backward pass
    inspection.attention_maps(model, x)                   # attention: SE / CBAM gates
    inspection.expected_calibration_error(logits, labels) # calibration: confidence vs accuracy

Everything here computes numbers (tensors, DataFrames); ``helpers.plots`` draws them.
"""

from helpers.inspection.attention import (
    AttentionMap,
    attention_maps,
    class_means,
    class_specificity,
    shuffled_specificity,
)
from helpers.inspection.calibration import (
    collect_logits,
    confidence_summary,
    expected_calibration_error,
    reliability_table,
    smoothed_optimum_gap,
)
from helpers.inspection.gradients import gradient_norms
from helpers.inspection.structure import (
    count_flops,
    count_parameters,
    macs_per_stage,
    parameters_per_stage,
    shape_table,
    stage_names,
    stage_of,
)

__all__ = [
    "AttentionMap",
    "attention_maps",
    "class_means",
    "class_specificity",
    "collect_logits",
    "confidence_summary",
    "count_flops",
    "count_parameters",
    "expected_calibration_error",
    "gradient_norms",
    "macs_per_stage",
    "parameters_per_stage",
    "reliability_table",
    "shape_table",
    "shuffled_specificity",
    "smoothed_optimum_gap",
    "stage_names",
    "stage_of",
]
