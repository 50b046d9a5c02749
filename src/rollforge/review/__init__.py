"""Manual curation: a small local web app to label rollouts (or DPO pairs) accept / reject / flag, with labels
in SQLite.

The labels store is ``rollforge.labels`` (no web dependency: the SFT/DPO filters read it without the
``review`` extra). The app itself lives in ``app`` and ``server``.
"""
