"""Grad-CAM for the course's models, on the grad-cam package (``pytorch_grad_cam``).

    maps = helpers.cam.grad_cam(model, x)                   # (B, H, W) in [0, 1]
    maps = helpers.cam.grad_cam(model, x, targets=y, method="scorecam")
    rgb = helpers.cam.overlay(images, maps, mean=..., std=...)
    helpers.cam.plot_cam_grid(images, {"Grad-CAM": maps}, labels=y, preds=p, classes=names)
    helpers.cam.pointing_game(maps, boxes), helpers.cam.energy_in_box(maps, boxes)
    helpers.cam.faithfulness(model, x, maps)                # ROAD and confidence change
    helpers.cam.cascading_randomization(model, x)           # Adebayo et al. 2018 sanity check
    clf = helpers.cam.course_classifier(model, data)        # or imagenet_classifier()
    x = clf.load("my_photo.jpg")                            # your own image, preprocessed

One job per module: ``core`` (the call, the target layer, the model's state), ``overlay``
(one image or a grid), ``localisation`` (maps against boxes), ``faithfulness`` (the
package's metrics), ``sanity`` (weight randomisation) and ``own_image`` (a model with its
preprocessing, for your own image files).
"""

from helpers.cam.core import (
    BATCHED_METHODS,
    METHODS,
    cam_session,
    default_target_layer,
    grad_cam,
    method_class,
    model_state,
    predicted_targets,
)
from helpers.cam.faithfulness import faithfulness
from helpers.cam.localisation import (
    REFERENCE_TOLERANCE,
    box_area_share,
    energy_in_box,
    pointing_game,
    scaled_tolerance,
)
from helpers.cam.overlay import overlay, plot_cam_grid
from helpers.cam.own_image import (
    ImageClassifier,
    course_classifier,
    imagenet_classifier,
    save_image,
)
from helpers.cam.sanity import cascade_units, cascading_randomization, spearman_per_image

__all__ = [
    "BATCHED_METHODS",
    "METHODS",
    "REFERENCE_TOLERANCE",
    "ImageClassifier",
    "box_area_share",
    "cam_session",
    "cascade_units",
    "cascading_randomization",
    "course_classifier",
    "default_target_layer",
    "energy_in_box",
    "faithfulness",
    "grad_cam",
    "imagenet_classifier",
    "method_class",
    "model_state",
    "overlay",
    "plot_cam_grid",
    "pointing_game",
    "predicted_targets",
    "save_image",
    "scaled_tolerance",
    "spearman_per_image",
]
