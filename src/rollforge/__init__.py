"""rollforge: NeMo Gym rollouts in, trainer-ready SFT/DPO datasets out."""

from rollforge.version import __version__

__all__ = ["__version__"]
