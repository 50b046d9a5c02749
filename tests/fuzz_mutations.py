"""Seeded mutations of real rollout lines: types, numbers, nesting, bytes and truncation (issue 14's fuzz).

Each mutation takes one line and returns it changed in one place. Structural ones edit the parsed JSON at a
random node; raw ones (``1e400``, a 400-digit integer, NaN, a lone surrogate) are spliced into the JSON text,
since ``json.dumps`` cannot write them; byte ones edit the bytes, valid JSON or not.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

RAW = "@@RAW@@"
OTHER_TYPES: list[Any] = [None, True, 0, -1, 1.5, "", "x", [], {}, [1], {"a": 1}]
RAW_NUMBERS = ["1e400", "-1e400", "1e200", "-1e200", "9" * 400, str(1 << 64), str(-(1 << 63) - 1), "NaN",
               "Infinity", "-0.0", "1E+2", "0.000000000000000000001"]  # fmt: skip
BAD_BYTES = [b"\xff", b"\xc3", b"\x00", b"\xed\xa0\x80", b"\n", b"\t", b"\\", b'"', b"{", b"]"]


def nodes(value: Any, path: tuple = (), out: list | None = None, limit: int = 4000) -> list[tuple]:
    """Paths (key/index tuples) to every node of a JSON value, up to ``limit`` of them."""
    out = [] if out is None else out
    if len(out) >= limit:
        return out
    out.append(path)
    if isinstance(value, dict):
        for key, item in value.items():
            nodes(item, (*path, key), out, limit)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            nodes(item, (*path, index), out, limit)
    return out


def _set(root: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    parent = root
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = new
    return root


def _get(root: Any, path: tuple) -> Any:
    for key in path:
        root = root[key]
    return root


def _spliced(root: Any, path: tuple, raw: str) -> bytes:
    return json.dumps(_set(root, path, RAW)).replace(json.dumps(RAW), raw, 1).encode()


def change_type(rng: random.Random, obj: Any, path: tuple) -> bytes:
    return json.dumps(_set(obj, path, rng.choice(OTHER_TYPES))).encode()


def raw_number(rng: random.Random, obj: Any, path: tuple) -> bytes:
    return _spliced(obj, path, rng.choice(RAW_NUMBERS))


def nest(rng: random.Random, obj: Any, path: tuple) -> bytes:
    depth = rng.choice([5, 100, 511, 513, 600, 1000, 3000])
    inner = json.dumps(_get(obj, path))
    raw = "[" * depth + inner + "]" * depth if rng.random() < 0.5 else '{"a":' * depth + inner + "}" * depth
    return _spliced(obj, path, raw)


def delete_key(rng: random.Random, obj: Any, path: tuple) -> bytes:
    parent = _get(obj, path[:-1]) if path else None
    if isinstance(parent, dict):
        del parent[path[-1]]
    elif isinstance(parent, list):
        parent.pop(path[-1])
    return json.dumps(obj).encode()


def surrogate(rng: random.Random, obj: Any, path: tuple) -> bytes:
    return _spliced(obj, path, rng.choice(['"\\ud800"', '"a\\udfffb"', '"\\ud83d\\ude00"', '"\\u0000"']))


def structural(name: str) -> Callable[[random.Random, bytes], bytes]:
    edit = {"type": change_type, "number": raw_number, "nesting": nest, "delete": delete_key,
            "surrogate": surrogate}[name]  # fmt: skip

    def mutate(rng: random.Random, line: bytes) -> bytes:
        obj = json.loads(line)
        return edit(rng, obj, rng.choice(nodes(obj)))

    return mutate


def flip_bytes(rng: random.Random, line: bytes) -> bytes:
    at = rng.randrange(len(line))
    return line[:at] + rng.choice(BAD_BYTES) + line[at + rng.choice([0, 1]) :]


def truncate(rng: random.Random, line: bytes) -> bytes:
    return line[: rng.randrange(len(line))]


MUTATIONS: dict[str, Callable[[random.Random, bytes], bytes]] = {
    **{name: structural(name) for name in ("type", "number", "nesting", "delete", "surrogate")},
    "bytes": flip_bytes,
    "truncation": truncate,
}


def mutated_lines(lines: list[bytes], count: int, seed: int) -> list[tuple[str, bytes]]:
    """``count`` (mutation name, mutated line) pairs; newlines inside a line are escaped as text would be."""
    rng = random.Random(seed)
    names = sorted(MUTATIONS)
    out = []
    for _ in range(count):
        name = rng.choice(names)
        line = MUTATIONS[name](rng, rng.choice(lines))
        out.append((name, line.replace(b"\n", b"\\n").replace(b"\r", b"")))
    return out
