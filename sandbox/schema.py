"""Meta's schema checks of the objects in a request: no key the object does not define, each key of its type.

Meta's OpenAPI description of the Cloud API closes every message object (``additionalProperties: false``)
and Meta answers a misspelt or misplaced key, or a value of the wrong JSON type, with ``100 Invalid
parameter`` naming the key (``Unexpected key "caption" on param "sticker".``), before any other check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import GraphError

JsonType = type | tuple[type, ...]
NUMBER = (int, float)
TYPE_NAMES = {
    str: "a string",
    bool: "a boolean",
    dict: "an object",
    list: "an array",
    int: "an integer",
    float: "a number",
}


def check_object(value: Any, *, where: str | None, fields: Mapping[str, JsonType]) -> dict[str, Any]:
    """``value`` if it is an object with only ``fields``, each of its type; ``where`` names it (None: the body)."""
    if not isinstance(value, dict):
        raise GraphError(100, f"Param {where or 'body'} must be an object.")
    for key, item in value.items():
        expected = fields.get(key)
        if expected is None:
            on = f'on param "{where}"' if where else "in the request body"
            raise GraphError(100, f'Unexpected key "{key}" {on}.')
        if not is_json_type(item, expected):
            name = f"{where}['{key}']" if where else key
            raise GraphError(100, f"Param {name} must be {describe(expected)}.")
    return value


def is_json_type(value: Any, expected: JsonType) -> bool:
    # JSON has no booleans among its numbers: True is not an integer here.
    return isinstance(value, expected) and not (isinstance(value, bool) and bool not in _types(expected))


def describe(expected: JsonType) -> str:
    return " or ".join(TYPE_NAMES.get(kind, kind.__name__) for kind in _types(expected))


def _types(expected: JsonType) -> tuple[type, ...]:
    return expected if isinstance(expected, tuple) else (expected,)
