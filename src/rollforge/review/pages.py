"""The item pages: a rollout's conversation, or a DPO pair with chosen beside rejected; and the full text of
a long block. A pair's texts are addressed per side (``chosen.m3.c``): each side is the prompt followed by
that side's completion."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from rollforge.errors import RollforgeError
from rollforge.review.index import Entry, RolloutIndex
from rollforge.review.nav import Review, encoded, item_context
from rollforge.review.pairs import Pair, PairEntry, PairIndex
from rollforge.review.render import conversation_view, full_text, rollout_view

SIDES = ("chosen", "rejected")


def item_page(request: Request) -> Response:
    review: Review = request.app.state.review
    item_id = request.path_params["item_id"]
    if item_id not in review.index.by_id:
        return review.page(request, "error.html", 404, message="no such item in this review")
    index = review.index
    context = item_context(request, review, item_id)
    try:
        if isinstance(index, PairIndex):
            return review.page(request, "pair.html", **context, **_pair(index, context["entry"]))
        assert isinstance(index, RolloutIndex)
        return review.page(request, "rollout.html", **context, **_rollout(index, context["entry"]))
    except (RollforgeError, OSError) as exc:
        return review.page(request, "error.html", 409, message=str(exc))


def _rollout(index: RolloutIndex, entry: Entry) -> dict[str, Any]:
    rollout = index.load_rollout(entry)
    stratum = index.stratum_of(entry.reward) or 0
    return {"rollout": rollout, "view": rollout_view(rollout), "stratum": index.stratum_names()[stratum]}


def _side(pair: Pair, side: str) -> list[dict[str, Any]]:
    return pair.prompt + (pair.chosen if side == "chosen" else pair.rejected)


def _pair(index: PairIndex, entry: PairEntry) -> dict[str, Any]:
    pair = index.load_pair(entry)
    n = len(pair.prompt)
    chosen = conversation_view(_side(pair, "chosen"), n, pair.fields, pair.tools)
    rejected = conversation_view(_side(pair, "rejected"), n, {}, [])
    return {"pair": pair, "chosen": chosen, "rejected": rejected}


def full_text_page(request: Request) -> Response:
    """One long text in full, as text/plain (never HTML: nosniff keeps the browser from guessing)."""
    review: Review = request.app.state.review
    index = review.index
    item_id, key = request.path_params["item_id"], request.path_params["key"]
    if item_id not in index.by_id:
        return PlainTextResponse("no such item in this review", 404)
    entry = index.entries[index.by_id[item_id]]
    try:
        if isinstance(index, PairIndex):
            side, _, key = key.partition(".")
            pair = index.load_pair(entry)
            text = full_text(_side(pair, side), pair.fields, pair.tools, key) if side in SIDES else None
        else:
            assert isinstance(index, RolloutIndex)
            rollout = index.load_rollout(entry)
            text = full_text(rollout.messages, rollout.fields, rollout.tools, key)
    except (RollforgeError, OSError) as exc:
        return PlainTextResponse(encoded(str(exc)), 409)
    if text is None:
        return PlainTextResponse("no such text in this rollout", 404)
    return PlainTextResponse(encoded(text))
