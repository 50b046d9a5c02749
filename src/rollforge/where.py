"""``--where``: a small, safe expression language over a rollout's fields. Parsed with :mod:`ast` and
walked node by node against a whitelist; nothing is ever passed to ``eval``.

    metadata.task_type == "math" and reward >= 0.7
    task_name in ["gsm8k", "aime"] and not truncated_by_judge
    len(response_text) > 0 or metadata["difficulty"] != "hard"

Names are dotted paths into the line's top-level fields (``reward``, ``prompt_id``, ``task_type`` and ``env``,
the rollout's environment (``rollforge.environments``), too);
a missing field is ``None``. Allowed: ``and or not``, comparisons (``== != < <= > >= in not in is is not``),
``+ - * / %``, literals, lists/tuples, subscripts with literal keys, and ``len abs min max lower``.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any

from rollforge.environments import environment_of
from rollforge.errors import RollforgeError
from rollforge.rollout import Rollout

_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b, ast.Is: operator.is_, ast.IsNot: operator.is_not,
}  # fmt: skip
_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Mod: operator.mod,
}  # fmt: skip
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": len, "abs": abs, "min": min, "max": max, "lower": lambda s: str(s).lower(),
}  # fmt: skip


class Where:
    """A compiled --where expression. Picklable (it keeps only the source), so workers can rebuild it."""

    def __init__(self, source: str, env_field: str | None = None) -> None:
        self.source, self.env_field = source, env_field
        try:
            self.tree = ast.parse(source, mode="eval").body
        except SyntaxError as exc:
            raise RollforgeError(
                f"--where {source!r} is not a valid expression ({exc.msg} at column {exc.offset})",
                hint="example: --where 'metadata.task_type == \"math\" and reward >= 0.7'",
            ) from None
        self.roots: set[str] = set()
        self._check(self.tree)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Where, (self.source, self.env_field))

    def _check(self, node: ast.AST) -> None:
        allowed = (
            ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.Compare, ast.BinOp,
            ast.Constant, ast.List, ast.Tuple, ast.Name, ast.Attribute, ast.Subscript, ast.Call, ast.Load,
            *_COMPARE, *_BINARY,
        )  # fmt: skip
        if not isinstance(node, allowed):
            raise RollforgeError(f"--where {self.source!r}: {type(node).__name__} is not allowed")
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
        ):
            raise RollforgeError(f"--where {self.source!r}: only {', '.join(_FUNCTIONS)} may be called")
        if isinstance(node, ast.Subscript) and not isinstance(node.slice, ast.Constant):
            raise RollforgeError(f"--where {self.source!r}: subscripts must be literal keys")
        path = _path(node)
        if path is not None:
            dunder = next((part for part in path.split(".") if part.startswith("__")), None)
            if dunder is not None:  # not a field: a way into Python's objects, refused outright
                raise RollforgeError(f"--where {self.source!r}: {dunder} is not allowed (no __names__)")
            self.roots.add(path.split(".")[0])
            return
        if isinstance(node, ast.Name):  # a function's name, not called
            raise RollforgeError(f"--where {self.source!r}: {node.id} must be called, e.g. {node.id}(reward)")
        if isinstance(node, ast.Attribute):
            raise RollforgeError(f"--where {self.source!r}: .{node.attr} applies to field names only")
        if isinstance(node, ast.Subscript):
            raise RollforgeError(f"--where {self.source!r}: [...] applies to field names only")
        for child in ast.iter_child_nodes(node):
            if not (isinstance(node, ast.Call) and child is node.func):
                self._check(child)

    def __call__(self, rollout: Rollout) -> bool:
        try:
            return bool(_eval(self.tree, rollout, self.env_field))
        except (TypeError, ValueError, ZeroDivisionError):
            return False  # comparing None (a missing field) with a number is simply "not matched"


def _path(node: ast.AST) -> str | None:
    """'metadata.task_type' for Name/Attribute/Subscript chains; None for anything else."""
    if isinstance(node, ast.Name) and node.id not in _FUNCTIONS:
        return node.id
    if isinstance(node, ast.Attribute):
        base = _path(node.value)
        return f"{base}.{node.attr}" if base else None
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        base = _path(node.value)
        return f"{base}.{node.slice.value!s}" if base else None
    return None


def _eval(node: ast.AST, rollout: Rollout, env_field: str | None = None) -> Any:
    path = _path(node)
    if path == "env" and "env" not in rollout.fields:  # the environment, unless the line has an `env`
        return environment_of(rollout, env_field)
    if path is not None:
        return rollout.field(path)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.BoolOp):
        values = (_eval(v, rollout, env_field) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, rollout, env_field)
        return (not value) if isinstance(node.op, ast.Not) else -value
    if isinstance(node, ast.Compare):
        left = _eval(node.left, rollout, env_field)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, rollout, env_field)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](
            _eval(node.left, rollout, env_field), _eval(node.right, rollout, env_field)
        )
    if isinstance(node, ast.List | ast.Tuple):
        return [_eval(e, rollout, env_field) for e in node.elts]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return _FUNCTIONS[node.func.id](*(_eval(a, rollout, env_field) for a in node.args))
    raise TypeError(type(node).__name__)
