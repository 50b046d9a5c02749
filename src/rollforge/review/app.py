"""The review web app: server-rendered pages over what is listed (rollouts, or DPO pairs) and the labels store.

Routes: ``/`` the filtered, paginated list; ``/r/{id}`` a rollout or a pair; ``POST /r/{id}/label`` records
a label and moves to the next one of the filter; ``/next`` jumps to the next unlabelled one;
``/r/{id}/full/{key}`` one long text in full, as text/plain. Page handlers are plain functions: Starlette
runs them in its thread pool, so reading a large rollout or waiting on SQLite never stalls the event loop.
Items are addressed by id only, looked up in the in-memory index: no request value ever names a file. Pages
render with Jinja autoescaping on every value, and any string encodes (see ``nav.encoded``).
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from rollforge.labels import LABELS, LabelStore
from rollforge.review.index import Filter, Listing
from rollforge.review.nav import (
    PAGE_SIZE,
    STATUSES,
    Review,
    filter_query,
    flash,
    neighbours,
    next_unlabelled,
    param,
    parse_filter,
    progress,
    small_int,
)
from rollforge.review.pages import full_text_page, item_page
from rollforge.review.pairs import PairIndex
from rollforge.review.security import Guard, GuardMiddleware

STATIC = Path(__file__).parent / "static"


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
    env.filters["reward"] = lambda x: "–" if x is None else f"{x:.4g}"
    env.filters["n"] = lambda x: f"{x:,}"
    env.filters["when"] = lambda iso: iso[:19].replace("T", " ") + " UTC"  # stored as ...T12:34:56.789Z
    return env


def list_page(request: Request) -> Response:
    review: Review = request.app.state.review
    index = review.index
    flt = parse_filter(request.query_params, index)
    labels = review.store.all()
    current = {rid: rec.label for rid, rec in labels.items()}
    selected = index.select(flt, current)
    pages = max(1, -(-len(selected) // PAGE_SIZE))
    page = min(max(small_int(param(request.query_params, "page")) or 1, 1), pages)
    rows = selected[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    query = filter_query(flt)
    return review.page(
        request,
        "list.html",
        index=index,
        flt=flt,
        rows=[(index.by_id[e.id] + 1, e, labels.get(e.id)) for e in rows],
        matched=len(selected),
        page=page,
        pages=pages,
        query=query,
        page_query=lambda n: filter_query(flt, page=n),
        unlabelled_url="/next" + filter_query(flt),
        progress=progress(index, current),
        statuses=STATUSES,
        strata=index.stratum_names(),
        flash=flash(request, index),
    )


def next_page(request: Request) -> Response:
    """Redirect to the next unlabelled item after ``after`` (or the first), keeping the filter; to the
    list of unlabelled ones (empty: all reviewed) when there is none."""
    review: Review = request.app.state.review
    flt = parse_filter(request.query_params, review.index)
    after = request.query_params.get("after", "")
    found = next_unlabelled(review.index, flt, review.store.current(), after)
    if found is None:
        return RedirectResponse("/" + filter_query(Filter(flt.stratum, flt.group, "unlabelled")), 303)
    return RedirectResponse(f"/r/{found.id}" + filter_query(flt), 303)


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
    item_id = request.path_params["item_id"]
    label, note = param(form, "label"), param(form, "note")
    if item_id not in index.by_id:
        return PlainTextResponse("no such item in this review", 404)
    if label not in LABELS:
        return PlainTextResponse(f"label must be one of {', '.join(LABELS)}", 400)
    # SQLite and the selection scan block: off the event loop, so other reviewers' pages keep flowing.
    await run_in_threadpool(
        review.store.set_label, item_id, label, note.replace("\r\n", "\n"), review.reviewer
    )
    flt = parse_filter(form, index)
    labels = await run_in_threadpool(review.store.current)
    _, nxt = neighbours(index.select(flt, labels), index, item_id)
    target = f"/r/{nxt.id}" if nxt else "/"
    return RedirectResponse(target + filter_query(flt, done=item_id, label=label), 303)


def create_app(index: Listing, store: LabelStore, reviewer: str, guard: Guard) -> Starlette:
    """The review ASGI app for an index (of rollouts, or of DPO pairs) and a labels store."""
    routes = [
        Route("/", list_page),
        Route("/next", next_page),
        Route("/r/{item_id}", item_page),
        Route("/r/{item_id}/label", label_action, methods=["POST"]),
        Route("/r/{item_id}/full/{key}", full_text_page),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes)
    mode = "pairs" if isinstance(index, PairIndex) else "rollouts"
    app.state.review = Review(index, store, reviewer, guard, _templates(), mode)
    app.add_middleware(GuardMiddleware, guard=guard)
    return app
