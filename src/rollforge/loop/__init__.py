"""``rollforge iterate``: the improvement loop (collect -> build -> train -> evaluate -> compare), resumable."""

from rollforge.loop.recipe import IterateRecipe, load_iterate_recipe, make_iterate_recipe
from rollforge.loop.rounds import iterate

__all__ = ["IterateRecipe", "iterate", "load_iterate_recipe", "make_iterate_recipe"]
