"""The Jinja sandbox templates run in: no attribute escapes, no shared-data mutation, and no
single operation that allocates gigabytes.

Jinja's `ImmutableSandboxedEnvironment` already refuses private and internal attributes and
the methods that modify lists, dicts and sets (substitution values are shared by every
recipient of a request). On top of it: touching an unsafe attribute is an error instead of
an empty string, and the operations that can turn a short template into a huge string refuse
sizes beyond fixed limits: before the operation for `*`, `**`, `%` and `str.format` widths,
the `center` / `indent` / `format` filters, numeric arguments of str methods (`ljust`) and
`str.replace`; after it (at most doubling what was allowed) for `+`, `~` and str method
results. Loops are bounded by Jinja's `range` limit. A template can still burn CPU, and a
few products (`join` of a long list) are only bounded by the request's own size: acceptable
for an API whose clients are authenticated.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from typing import Any, NoReturn

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_SEQUENCE = 4_000_000  # characters or items of one value (a request is at most 2 MiB)
MAX_WIDTH = 10_000  # any width, fill or count argument
MAX_POWER_BITS = 4_096  # `a ** b` may produce at most this many bits

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d+)?(?:\.(\*|\d+))?")
_FORMATTER = string.Formatter()


def _refuse(what: str) -> NoReturn:
    raise SecurityError(f"{what} exceeds the template sandbox limit")


def _check_percent_format(fmt: str) -> None:
    for width, precision in _PERCENT_SPEC.findall(fmt):
        for number in (width, precision):
            if number == "*" or (number and int(number) > MAX_WIDTH):
                _refuse("a format width")


def _check_brace_format(fmt: str) -> None:
    for _text, _field, spec, _conversion in _FORMATTER.parse(fmt):
        if spec and any(int(digits) > MAX_WIDTH for digits in re.findall(r"\d+", spec)):
            _refuse("a format width")


def _check_ints(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_WIDTH:
            _refuse("a numeric argument")


def _capped(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def filter_(value: Any, *args: Any, **kwargs: Any) -> Any:
        _check_ints(args, kwargs)
        if name == "format" and isinstance(value, str):
            _check_percent_format(value)
        return function(value, *args, **kwargs)

    filter_.__name__ = function.__name__
    return filter_


def check_size(value: Any) -> Any:
    """`value`, unless it is a string or sequence longer than MAX_SEQUENCE."""
    if isinstance(value, str | list | tuple | dict) and len(value) > MAX_SEQUENCE:
        _refuse("a value")
    return value


class _SizeCheckingCodeGenerator(CodeGenerator):
    """Compiles `a ~ b` so that its result is size-checked like `a + b`."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.check_size(")
        super().visit_Concat(node, frame)
        self.write(")")


class TemplateSandbox(ImmutableSandboxedEnvironment):
    """A sandboxed Jinja environment with size limits (see the module docstring)."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = _SizeCheckingCodeGenerator
    check_size = staticmethod(check_size)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals.pop("lipsum", None)  # generates text of any size
        for name in ("center", "indent", "format"):
            self.filters[name] = _capped(name, self.filters[name])

    def unsafe_undefined(self, obj: Any, attribute: str) -> NoReturn:
        raise SecurityError(
            f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe"
        )

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_repeat(left, right)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "%" and isinstance(left, str):
            _check_percent_format(left)
        return check_size(self.binop_table[operator](left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            _check_ints(args, kwargs)  # "x".ljust(10**9), "x".zfill(...), "x".center(...)
            if getattr(__obj, "__name__", "") == "replace":
                _check_replace(owner, args)
        wrapped = getattr(getattr(__obj, "__wrapped__", None), "__self__", None)
        if isinstance(wrapped, str):
            _check_brace_format(wrapped)  # the sandbox's str.format wrapper
        return check_size(super().call(__context, __obj, *args, **kwargs))


def _check_replace(text: str, args: tuple[Any, ...]) -> None:
    if len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        occurrences = len(text) + 1 if not args[0] else len(text) // len(args[0])
        if len(text) + occurrences * len(args[1]) > MAX_SEQUENCE:
            _refuse("a replacement")


def _check_repeat(left: Any, right: Any) -> None:
    for seq, count in ((left, right), (right, left)):
        sized = isinstance(seq, str | list | tuple) and isinstance(count, int)
        if sized and len(seq) * count > MAX_SEQUENCE:
            _refuse("a repeated sequence")


def _check_power(base: Any, exponent: Any) -> None:
    integers = isinstance(base, int) and isinstance(exponent, int) and exponent > 0
    if integers and max(base.bit_length(), 1) * exponent > MAX_POWER_BITS:
        _refuse("a power")
