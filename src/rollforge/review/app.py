"""The review web app: server-rendered pages over the rollout index and the labels store.

Routes: ``/`` the filtered, paginated list; ``/r/{rollout_id}`` a conversation; ``POST /r/{id}/label``
records a label and moves to the next rollout of the filter; ``/r/{id}/full/{key}`` one long text in full,
as text/plain. Page handlers are plain functions: Starlette runs them in its thread pool, so reading a
large rollout or waiting on SQLite never stalls the event loop. Rollouts are addressed by id only, looked
up in the in-memory index: no request value ever names a file. Pages render with Jinja autoescaping on
every value.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from rollforge.errors import RollforgeError
from rollforge.labels import LABELS, LabelStore
from rollforge.review.index import Entry, Filter, RolloutIndex
from rollforge.review.render import full_text, rollout_view
from rollforge.review.security import Guard, GuardMiddleware

PAGE_SIZE = 50
STATUSES = ("unlabelled", *LABELS)
STATIC = Path(__file__).parent / "static"


@dataclass(slots=True)
class Review:
    """What every request needs: the index, the labels, who is labelling, and the security settings."""

    index: RolloutIndex
    store: LabelStore
    reviewer: str
    guard: Guard
    templates: Environment

    def page(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        csrf = self.guard.csrf_token(request.scope["state"]["session"])
        html = self.templates.get_template(name).render(csrf=csrf, reviewer=self.reviewer, **context)
        return HTMLResponse(html, status)


def _templates() -> Environment:
    # autoescape=True for every template: all values are escaped unless a template says otherwise,
    # and no template says otherwise for data.
    env = Environment(
        loader=PackageLoader("rollforge.review", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["reward"] = lambda x: f"{x:.4g}"
    env.filters["n"] = lambda x: f"{x:,}"
    env.filters["when"] = lambda iso: iso[:19].replace("T", " ") + " UTC"  # stored as ...T12:34:56.789Z
    return env


def _text(params: Any, key: str) -> str:
    value = params.get(key)
    return value if isinstance(value, str) else ""  # a form field may also be an uploaded file


def _small_int(text: str) -> int | None:
    """A page or stratum number; None for anything else (huge digit strings would be slow to convert)."""
    return int(text) if re.fullmatch(r"[0-9]{1,9}", text) else None


def parse_filter(params: Any, index: RolloutIndex) -> Filter:
    """The filter named by query or form fields; values that name nothing are ignored."""
    flt = Filter()
    stratum = _small_int(_text(params, "stratum"))
    if stratum is not None and stratum <= len(index.strata):
        flt.stratum = stratum
    flt.task_type = _text(params, "task") or None
    status = _text(params, "status")
    flt.status = status if status in STATUSES else None
    return flt


def filter_query(flt: Filter, **extra: Any) -> str:
    """The filter (and extras) as a URL query string, '' when empty."""
    pairs = [("stratum", flt.stratum), ("task", flt.task_type), ("status", flt.status), *extra.items()]
    query = urlencode([(k, v) for k, v in pairs if v is not None and v != ""])
    return f"?{query}" if query else ""


def neighbours(
    selected: list[Entry], index: RolloutIndex, rollout_id: str
) -> tuple[Entry | None, Entry | None]:
    """(previous, next) of a rollout within a selection, by file order, whether or not it is in it (a
    rollout just labelled may have left an 'unlabelled' filter)."""
    here = index.by_id[rollout_id]
    positions = [index.by_id[e.rollout_id] for e in selected]
    before = bisect.bisect_left(positions, here)
    after = bisect.bisect_right(positions, here)
    return (selected[before - 1] if before else None, selected[after] if after < len(selected) else None)


def progress(index: RolloutIndex, labels: dict[str, str]) -> dict[str, int]:
    counts = dict.fromkeys(LABELS, 0)
    for e in index.entries:
        label = labels.get(e.rollout_id)
        if label is not None:
            counts[label] += 1
    return {"total": len(index), "reviewed": sum(counts.values()), **counts}


def list_page(request: Request) -> Response:
    review: Review = request.app.state.review
    index = review.index
    flt = parse_filter(request.query_params, index)
    labels = review.store.all()
    current = {rid: rec.label for rid, rec in labels.items()}
    selected = index.select(flt, current)
    pages = max(1, -(-len(selected) // PAGE_SIZE))
    page = min(max(_small_int(_text(request.query_params, "page")) or 1, 1), pages)
    rows = selected[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    return review.page(
        request,
        "list.html",
        index=index,
        flt=flt,
        rows=[(index.by_id[e.rollout_id] + 1, e, labels.get(e.rollout_id)) for e in rows],
        matched=len(selected),
        page=page,
        pages=pages,
        query=filter_query(flt),
        page_query=lambda n: filter_query(flt, page=n),
        progress=progress(index, current),
        statuses=STATUSES,
        strata=index.stratum_names(),
        flash=_flash(request, index),
    )


def rollout_page(request: Request) -> Response:
    review: Review = request.app.state.review
    index = review.index
    rollout_id = request.path_params["rollout_id"]
    if rollout_id not in index.by_id:
        return review.page(request, "error.html", 404, message="no such rollout in this review")
    entry = index.entries[index.by_id[rollout_id]]
    try:
        rollout = index.load_rollout(entry)
    except (RollforgeError, OSError) as exc:
        return review.page(request, "error.html", 409, message=str(exc))
    flt = parse_filter(request.query_params, index)
    labels = review.store.all()
    current = {rid: rec.label for rid, rec in labels.items()}
    selected = index.select(flt, current)
    prev, nxt = neighbours(selected, index, rollout_id)
    query = filter_query(flt)
    # back to the list page this rollout is on, so `u` returns to where the reviewer was
    at = next((i for i, e in enumerate(selected) if e.rollout_id == rollout_id), 0)
    list_url = "/" + filter_query(flt, page=at // PAGE_SIZE + 1 if at >= PAGE_SIZE else None)
    return review.page(
        request,
        "rollout.html",
        entry=entry,
        rollout=rollout,
        view=rollout_view(rollout),
        source=index.sources[entry.source].path,
        label=labels.get(rollout_id),
        history=review.store.history(rollout_id),
        stratum=index.stratum_names()[index.stratum_of(entry.reward)],
        prev_url=f"/r/{prev.rollout_id}{query}" if prev else None,
        next_url=f"/r/{nxt.rollout_id}{query}" if nxt else None,
        list_url=list_url,
        flt=flt,
        labels=LABELS,
        progress=progress(index, current),
        position=index.by_id[rollout_id] + 1,
        flash=_flash(request, index),
    )


async def label_action(request: Request) -> Response:
    review: Review = request.app.state.review
    index = review.index
    form = await request.form()
    if not review.guard.csrf_ok(request, form.get("csrf")):
        return PlainTextResponse(
            "refused: missing or stale CSRF token. "
            "Reload the page (the server may have restarted) and try again.",
            403,
        )
    rollout_id = request.path_params["rollout_id"]
    label, note = _text(form, "label"), _text(form, "note")
    if rollout_id not in index.by_id:
        return PlainTextResponse("no such rollout in this review", 404)
    if label not in LABELS:
        return PlainTextResponse(f"label must be one of {', '.join(LABELS)}", 400)
    # SQLite and the selection scan block: off the event loop, so other reviewers' pages keep flowing.
    await run_in_threadpool(
        review.store.set_label, rollout_id, label, note.replace("\r\n", "\n"), review.reviewer
    )
    flt = parse_filter(form, index)
    labels = await run_in_threadpool(review.store.current)
    _, nxt = neighbours(index.select(flt, labels), index, rollout_id)
    target = f"/r/{nxt.rollout_id}" if nxt else "/"
    return RedirectResponse(target + filter_query(flt, done=rollout_id, label=label), 303)


def full_text_page(request: Request) -> Response:
    """One long text in full, as text/plain (never HTML: nosniff keeps the browser from guessing)."""
    index = request.app.state.review.index
    rollout_id = request.path_params["rollout_id"]
    if rollout_id not in index.by_id:
        return PlainTextResponse("no such rollout in this review", 404)
    try:
        rollout = index.load_rollout(index.entries[index.by_id[rollout_id]])
    except (RollforgeError, OSError) as exc:
        return PlainTextResponse(str(exc), 409)
    text = full_text(rollout, request.path_params["key"])
    if text is None:
        return PlainTextResponse("no such text in this rollout", 404)
    return PlainTextResponse(text)


def _flash(request: Request, index: RolloutIndex) -> dict[str, str] | None:
    """'just labelled X as Y', from the redirect after a label; only values we know are echoed back."""
    done, label = request.query_params.get("done"), request.query_params.get("label")
    if done in index.by_id and label in LABELS:
        return {"rollout_id": str(done), "label": str(label)}
    return None


def create_app(index: RolloutIndex, store: LabelStore, reviewer: str, guard: Guard) -> Starlette:
    """The review ASGI app for an index and a labels store."""
    routes = [
        Route("/", list_page),
        Route("/r/{rollout_id}", rollout_page),
        Route("/r/{rollout_id}/label", label_action, methods=["POST"]),
        Route("/r/{rollout_id}/full/{key}", full_text_page),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.review = Review(index, store, reviewer, guard, _templates())
    app.add_middleware(GuardMiddleware, guard=guard)
    return app
