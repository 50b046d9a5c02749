"""rollforge: NeMo Gym rollouts in, trainer-ready SFT/DPO datasets out."""

__version__ = "0.1.0"
