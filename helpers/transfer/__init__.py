"""Transfer learning: pretrained weights in, a new head, frozen stages, discriminative LRs.

    from helpers import transfer
    model = transfer.load_pretrained("resnet50", "IMAGENET1K_V2", num_classes=10)
    transfer.freeze(model, until="layer3", bn_stats=True)
    opt = torch.optim.SGD(transfer.param_groups(model, lr=0.01, backbone_lr=0.001), momentum=0.9)
    transfer.summary(model)

- :mod:`.loading`: ``load_pretrained``, ``pretrained_meta``, ``load_weights`` (never a silent
  partial load: a diff of missing / unexpected / mismatched keys);
- :mod:`.finetune`: ``replace_head``, ``freeze`` / ``unfreeze``, ``param_groups``, ``summary``;
- :mod:`.attention_init`: ``identity_init_attention`` (new attention modules that start as
  the identity on a pretrained backbone);
- :mod:`.source`: ``source_model``, a small source network pretrained offline (not ImageNet);
- :mod:`.data`: ``class_subset``, ``per_class``, ``write_image_folder``, ``Resized``;
- :mod:`.corruptions`: ``corrupt``, ``robustness`` (CIFAR-10-C style noise, blur, contrast);
- :mod:`.recipe`: ``FineTuneRecipe``, the loaders and the short training run every transfer
  experiment shares;
- :mod:`.tables`: ``top1_agreement``, ``seed_table``, ``paired_differences`` (results per seed,
  differences paired by seed).
"""

from helpers.transfer.attention_init import attention_blocks, identity_init_attention
from helpers.transfer.corruptions import CORRUPTIONS, SEVERITY, corrupt, robustness
from helpers.transfer.data import Resized, class_subset, per_class, repeat_to, write_image_folder
from helpers.transfer.finetune import (
    adapt_stem,
    freeze,
    frozen_bn_modules,
    model_parts,
    param_groups,
    replace_head,
    summary,
    unfreeze,
    weight_change,
)
from helpers.transfer.loading import (
    LoadReport,
    WeightsMismatchError,
    WeightsUnavailableError,
    load_pretrained,
    load_weights,
    pretrained_meta,
    read_weights_file,
    torchvision_weights,
)
from helpers.transfer.recipe import FineTuneRecipe
from helpers.transfer.source import save_source_model, source_model
from helpers.transfer.tables import paired_differences, seed_table, top1_agreement

__all__ = [
    "CORRUPTIONS",
    "SEVERITY",
    "FineTuneRecipe",
    "LoadReport",
    "Resized",
    "WeightsMismatchError",
    "WeightsUnavailableError",
    "adapt_stem",
    "attention_blocks",
    "class_subset",
    "corrupt",
    "freeze",
    "frozen_bn_modules",
    "identity_init_attention",
    "load_pretrained",
    "load_weights",
    "model_parts",
    "paired_differences",
    "param_groups",
    "per_class",
    "pretrained_meta",
    "read_weights_file",
    "repeat_to",
    "replace_head",
    "robustness",
    "save_source_model",
    "seed_table",
    "source_model",
    "summary",
    "top1_agreement",
    "torchvision_weights",
    "unfreeze",
    "weight_change",
    "write_image_folder",
]
