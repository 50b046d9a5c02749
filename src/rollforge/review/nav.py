"""What every review page shares: the app's state, the filter in the URL, and the way between pages (previous
and next within the filter, the next unlabelled one, back to the list row the reviewer came from)."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from rollforge.labels import LABELS, LabelStore
from rollforge.review.index import Filter, Listing
from rollforge.review.security import Guard

PAGE_SIZE = 50
STATUSES = ("unlabelled", *LABELS)


def encoded(text: str) -> bytes:
    """UTF-8 for any string: a lone surrogate (``json.loads('"\\\\ud800"')`` makes one) becomes its escape
    ``\\ud800``, visible on the page, instead of an encoding error (HTTP 500)."""
    return text.encode("utf-8", "backslashreplace")


@dataclass(slots=True)
class Review:
    """What every request needs: what is listed, the labels, who is labelling, and the security settings."""

    index: Listing
    store: LabelStore
    reviewer: str
    guard: Guard
    templates: Environment
    mode: str = "rollouts"  # rollouts | pairs

    def page(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        csrf = self.guard.csrf_token(request.scope["state"]["session"])
        html = self.templates.get_template(name).render(
            csrf=csrf, reviewer=self.reviewer, mode=self.mode, **context
        )
        return HTMLResponse(encoded(html), status)


def param(params: Any, key: str) -> str:
    value = params.get(key)
    return value if isinstance(value, str) else ""  # a form field may also be an uploaded file


def small_int(text: str) -> int | None:
    """A page or stratum number; None for anything else (huge digit strings would be slow to convert)."""
    return int(text) if re.fullmatch(r"[0-9]{1,9}", text) else None


def parse_filter(params: Any, index: Listing) -> Filter:
    """The filter named by query or form fields; values that name nothing are ignored."""
    flt = Filter()
    stratum = small_int(param(params, "stratum"))
    if stratum is not None and stratum <= len(index.strata):
        flt.stratum = stratum
    flt.group = param(params, "task") or None
    status = param(params, "status")
    flt.status = status if status in STATUSES else None
    return flt


def filter_query(flt: Filter, **extra: Any) -> str:
    """The filter (and extras) as a URL query string, '' when empty."""
    pairs = [("stratum", flt.stratum), ("task", flt.group), ("status", flt.status), *extra.items()]
    query = urlencode([(k, v) for k, v in pairs if v is not None and v != ""])
    return f"?{query}" if query else ""


def neighbours(selected: list[Any], index: Listing, item_id: str) -> tuple[Any | None, Any | None]:
    """(previous, next) of an entry within a selection, by file order, whether or not it is in it (one just
    labelled may have left an 'unlabelled' filter)."""
    here = index.by_id[item_id]
    positions = [index.by_id[e.id] for e in selected]
    before = bisect.bisect_left(positions, here)
    after = bisect.bisect_right(positions, here)
    return (selected[before - 1] if before else None, selected[after] if after < len(selected) else None)


def next_unlabelled(index: Listing, flt: Filter, labels: dict[str, str], after: str) -> Any | None:
    """The first unlabelled entry of the filter (its status aside) after ``after`` in file order, wrapping
    around to the start (``after`` itself, when it is the last one left); None when every one is labelled."""
    pool = index.select(Filter(flt.stratum, flt.group, "unlabelled"), labels)
    nxt = neighbours(pool, index, after)[1] if after in index.by_id else None
    return nxt or (pool[0] if pool else None)


def list_url(selected: list[Any], index: Listing, item_id: str, flt: Filter) -> str:
    """The list page that shows this entry (or, when it left the filter, where it would be), with its id in
    the fragment: the page focuses that row, so going back to the list lands where the reviewer was."""
    at = bisect.bisect_left([index.by_id[e.id] for e in selected], index.by_id[item_id])
    page = at // PAGE_SIZE + 1
    return "/" + filter_query(flt, page=page if page > 1 else None) + f"#at-{item_id}"


def progress(index: Listing, labels: dict[str, str]) -> dict[str, int]:
    counts = dict.fromkeys(LABELS, 0)
    for e in index.entries:
        label = labels.get(e.id)
        if label is not None:
            counts[label] += 1
    return {"total": len(index), "reviewed": sum(counts.values()), **counts}


def flash(request: Request, index: Listing) -> dict[str, str] | None:
    """'just labelled X as Y', from the redirect after a label; only values we know are echoed back."""
    done, label = request.query_params.get("done"), request.query_params.get("label")
    if done in index.by_id and label in LABELS:
        return {"id": str(done), "label": str(label)}
    return None


def item_context(request: Request, review: Review, item_id: str) -> dict[str, Any]:
    """What an item page (a rollout or a pair) shows around the item: label, history and the way on."""
    index = review.index
    flt = parse_filter(request.query_params, index)
    labels = review.store.all()
    current = {rid: rec.label for rid, rec in labels.items()}
    selected = index.select(flt, current)
    prev, nxt = neighbours(selected, index, item_id)
    query = filter_query(flt)
    return {
        "entry": index.entries[index.by_id[item_id]],
        "source": index.sources[index.entries[index.by_id[item_id]].source].path,
        "label": labels.get(item_id),
        "history": review.store.history(item_id),
        "prev_url": f"/r/{prev.id}{query}" if prev else None,
        "next_url": f"/r/{nxt.id}{query}" if nxt else None,
        "unlabelled_url": "/next" + filter_query(flt, after=item_id),
        "list_url": list_url(selected, index, item_id, flt),
        "flt": flt,
        "labels": LABELS,
        "progress": progress(index, current),
        "position": index.by_id[item_id] + 1,
        "base": f"/r/{item_id}/full/",  # where the page's long texts are served in full
        "flash": flash(request, index),
    }
