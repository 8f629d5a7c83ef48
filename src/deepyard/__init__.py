"""Deepyard: a self-hosted interactive deep-learning training system on PyTorch.

The domain packages (`datasets`, and later `networks`, `train`, `infer`) hold the work; `cli` is a thin adapter.
"""

__version__ = "0.1.0"
