"""Starting the review server: check the bind, load the index, open the labels, serve with uvicorn."""

from __future__ import annotations

import getpass
import re
import socket
import sys
from dataclasses import dataclass
from urllib.parse import quote

from rollforge.errors import RollforgeError, missing_extra
from rollforge.labels import LabelStore
from rollforge.review.index import DEFAULT_STRATA, Listing, RolloutIndex
from rollforge.review.pairs import PairIndex, pair_sources


@dataclass(slots=True)
class ServeOptions:
    paths: list[str]
    db: str
    host: str = "127.0.0.1"
    port: int = 8765  # 0: any free port (the URL printed says which)
    reviewer: str | None = None
    token: str | None = None
    strata: tuple[float, ...] = DEFAULT_STRATA


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without an access token: anyone on the network could label.
    Tokens travel in URLs and cookies, so they are kept to characters that need no quoting there."""
    from rollforge.review.security import is_loopback

    if token is not None and not re.fullmatch(r"[A-Za-z0-9._~-]{8,}", token):
        raise RollforgeError(
            "--token must be at least 8 characters of letters, digits, '.', '_', '~' or '-'",
            hint="e.g. --token $(openssl rand -hex 16)",
        )
    if not is_loopback(host) and not token:
        raise RollforgeError(
            f"refusing to listen on {host} without --token: "
            "anyone who can reach it could read and label rollouts",
            hint="pass --token SECRET (e.g. --token $(openssl rand -hex 16)), "
            "or keep the default --host 127.0.0.1",
        )


def default_reviewer() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return "reviewer"


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise RollforgeError(
            f"cannot listen on {host}:{port}: {exc.strerror}", hint="pick another --port"
        ) from None
    sock.listen(128)
    return sock


def open_index(paths: list[str], strata: tuple[float, ...] = DEFAULT_STRATA) -> Listing:
    """DPO pairs when the paths hold preference rows (or are a release), else rollouts."""
    pairs = pair_sources(paths)
    return PairIndex.load(pairs, strata) if pairs is not None else RolloutIndex.load(paths, strata)


def serve(options: ServeOptions) -> int:
    """Run the review server until interrupted. Prints the URL to open (with the token, if any)."""
    check_bind(options.host, options.token)
    try:
        import uvicorn

        from rollforge.review.app import create_app
        from rollforge.review.security import Guard, is_loopback
    except ModuleNotFoundError as exc:
        raise missing_extra(exc.name or "starlette", "review") from None
    store = LabelStore(options.db)
    index = open_index(options.paths, options.strata)
    sock = bind(options.host, options.port)
    port = sock.getsockname()[1]
    guard = Guard(port, options.token, loopback=is_loopback(options.host))
    app = create_app(index, store, options.reviewer or default_reviewer(), guard)
    rejected = sum(index.rejected.values())
    what = "DPO pairs" if isinstance(index, PairIndex) else "rollouts"
    print(
        f"rollforge review: {len(index)} {what}"
        + (f", {rejected} rejected lines not shown" if rejected else "")
        + f"; labels in {options.db}",
        file=sys.stderr,
    )
    shown_host = f"[{options.host}]" if ":" in options.host else options.host
    url = f"http://{shown_host}:{port}/" + (
        f"?token={quote(options.token, safe='')}" if options.token else ""
    )
    print(f"serving {url}", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
    return 0
