"""Transfer learning: pretrained weights, the model store, and fine-tuning a network on a new dataset.

Public API: `load_pretrained` (`pretrained:NAME`, `timm:NAME`, `store:NAME`, `run:ID[@STEP]`, a weights file or
URL), `describe_torchvision`, the store (`list_models`, `get_model`, `delete_model`, `save_model`, `add_model`,
`make_pretrained`, `import_archive`, `read_index`, `pull_model`, `write_index`), surgery (`find_heads`, `replace_head`,
`adapt_conv_weight`, `load_matching`, `LoadReport`), and fine-tuning itself: `train_from(..., source=...)` and
`resume_from` (deepyard.train's `train` and `resume_run` with the run's start: `start_new`, `start_resumed`),
with the `finetune.*` settings of TrainConfig.

The names load on first use (PEP 562): listing the store does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deepyard.lazy import lazy_getattr

if TYPE_CHECKING:
    from deepyard.transfer.sources import (
        Pretrained,
        add_model,
        describe_torchvision,
        import_archive,
        load_pretrained,
        make_pretrained,
    )
    from deepyard.transfer.start import FinetuneStart, resume_from, start_new, start_resumed, train_from
    from deepyard.transfer.store import (
        ModelEntry,
        delete_model,
        find_model,
        get_model,
        list_models,
        models_dir,
        pull_model,
        read_index,
        save_model,
        write_index,
    )
    from deepyard.transfer.surgery import (
        LoadReport,
        adapt_conv_weight,
        find_heads,
        first_conv,
        load_matching,
        replace_head,
    )
    from deepyard.transfer.weights import load_labels, load_weights_file, save_safetensors, state_hash

_WHERE = {
    "FinetuneStart": "start",
    "LoadReport": "surgery",
    "ModelEntry": "store",
    "Pretrained": "sources",
    "adapt_conv_weight": "surgery",
    "add_model": "sources",
    "delete_model": "store",
    "describe_torchvision": "sources",
    "find_heads": "surgery",
    "find_model": "store",
    "first_conv": "surgery",
    "get_model": "store",
    "import_archive": "sources",
    "list_models": "store",
    "load_labels": "weights",
    "load_matching": "surgery",
    "load_pretrained": "sources",
    "load_weights_file": "weights",
    "make_pretrained": "sources",
    "models_dir": "store",
    "pull_model": "store",
    "read_index": "store",
    "replace_head": "surgery",
    "resume_from": "start",
    "start_new": "start",
    "start_resumed": "start",
    "train_from": "start",
    "save_model": "store",
    "save_safetensors": "weights",
    "state_hash": "weights",
    "write_index": "store",
}

__all__ = [
    "FinetuneStart",
    "LoadReport",
    "ModelEntry",
    "Pretrained",
    "adapt_conv_weight",
    "add_model",
    "delete_model",
    "describe_torchvision",
    "find_heads",
    "find_model",
    "first_conv",
    "get_model",
    "import_archive",
    "list_models",
    "load_labels",
    "load_matching",
    "load_pretrained",
    "load_weights_file",
    "make_pretrained",
    "models_dir",
    "pull_model",
    "read_index",
    "replace_head",
    "resume_from",
    "save_model",
    "save_safetensors",
    "start_new",
    "start_resumed",
    "state_hash",
    "train_from",
    "write_index",
]


__getattr__ = lazy_getattr(__name__, _WHERE, globals())
