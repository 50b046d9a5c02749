"""``rollforge iterate``: the improvement loop (collect -> build -> train -> evaluate -> compare), resumable."""

from rollforge.iterate.loop import iterate
from rollforge.iterate.recipe import IterateRecipe, load_iterate_recipe, make_iterate_recipe

__all__ = ["IterateRecipe", "iterate", "load_iterate_recipe", "make_iterate_recipe"]
