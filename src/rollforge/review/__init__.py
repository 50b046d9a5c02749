"""Manual curation: a small local web app to label rollouts (or DPO pairs) accept / reject / flag, with labels
in SQLite.

``rollforge.review.db`` (``load_labels``, ``rejected_ids``, ``export_labels``) has no web dependency: the
SFT/DPO filters import it without the ``review`` extra. The app itself lives in ``app`` and ``server``.
"""
