"""Train on rollforge releases with TRL: ``train_sft`` and ``train_dpo`` (needs ``rollforge[train]``)."""

from rollforge.train.config import TrainOptions
from rollforge.train.dpo import train_dpo
from rollforge.train.sft import train_sft

__all__ = ["TrainOptions", "train_dpo", "train_sft"]
