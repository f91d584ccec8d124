"""What Meta checks when a template is created or edited (docs/meta.md §8): names, languages, categories,
components and their limits, parameters against their examples, media samples by their upload handle, and
one name per language. A refusal is Meta's code 100 with a 2388xxx subcode and its words for the person."""

from __future__ import annotations

import re
from typing import Any

from .errors import GraphError

NAME = re.compile(r"[a-z0-9_]+")
LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")
VARIABLE = re.compile(r"\{\{\s*(\w+)\s*\}\}")
CATEGORIES = {"MARKETING", "UTILITY", "AUTHENTICATION"}
# The characters a text part may have, and the bytes of a media sample.
TEXT_LIMITS = {"HEADER": 60, "BODY": 1024, "FOOTER": 60}
SAMPLE_LIMITS = {"IMAGE": 5 * 1024 * 1024, "VIDEO": 16 * 1024 * 1024, "DOCUMENT": 100 * 1024 * 1024}
BUTTON_CAPS = {"URL": 2, "PHONE_NUMBER": 1, "COPY_CODE": 1, "QUICK_REPLY": 10, "OTP": 1}


def refuse(subcode: int, message: str, title: str = "Invalid parameter") -> GraphError:
    return GraphError(100, message, title=title, subcode=subcode, user_message=message)


def review(body: Any, *, templates: list[dict], samples: dict[str, int], creating: bool) -> dict[str, Any]:
    """The template Meta would store, or its refusal; ``samples`` are upload handles with their sizes."""
    if not isinstance(body, dict):
        raise refuse(2388040, "The request body must be a JSON object.")
    if creating:
        name, language = str(body.get("name") or ""), str(body.get("language") or "")
        if not NAME.fullmatch(name) or len(name) > 512:
            raise refuse(2388040, "Template names may only have lowercase letters, digits and underscores.")
        if not LANGUAGE.fullmatch(language):
            raise refuse(2388040, f"The language {language!r} is not supported.")
        if any(t["name"] == name and t["language"] == language for t in templates):
            raise refuse(2388024, f"Content in this language already exists for {name}.", "Duplicate template")
    category = str(body.get("category") or "").upper()
    if category not in CATEGORIES:
        raise refuse(2388040, f"Category {body.get('category')!r} is not one of MARKETING, UTILITY, AUTHENTICATION.")
    components = body.get("components")
    if not isinstance(components, list):
        raise refuse(2388040, "components must be a list.")
    kinds = [str(c.get("type") or "").upper() for c in components if isinstance(c, dict)]
    if kinds.count("BODY") != 1 or any(kinds.count(k) > 1 for k in ("HEADER", "FOOTER", "BUTTONS")):
        raise refuse(2388072, "A template has one body and at most one header, footer and button list.")
    named = str(body.get("parameter_format") or "positional").lower() == "named"
    for part in components:
        kind = str(part.get("type") or "").upper()
        if kind in ("HEADER", "BODY", "FOOTER"):
            _text_part(kind, part, named=named, samples=samples, category=category)
        elif kind == "BUTTONS":
            _buttons(part.get("buttons") or [], category=category)
    return {"category": category, "parameter_format": "NAMED" if named else "POSITIONAL", "components": components}


def _text_part(kind: str, part: dict, *, named: bool, samples: dict[str, int], category: str) -> None:
    header_format = str(part.get("format") or "TEXT").upper()
    if kind == "HEADER" and header_format in SAMPLE_LIMITS:
        handles = (part.get("example") or {}).get("header_handle") or []
        if len(handles) != 1 or handles[0] not in samples:
            raise refuse(2388047, "A media header needs one sample from the Resumable Upload API.")
        if samples[handles[0]] > SAMPLE_LIMITS[header_format]:
            raise refuse(2388047, f"The {header_format.lower()} sample is over Meta's size for it.")
        return
    if kind == "BODY" and category == "AUTHENTICATION" and "text" not in part:
        return
    text = str(part.get("text") or "")
    if not text or len(text) > TEXT_LIMITS[kind]:
        raise refuse(2388040, f"The {kind.lower()} text must have 1 to {TEXT_LIMITS[kind]} characters.")
    variables = list(dict.fromkeys(VARIABLE.findall(text)))
    if kind == "FOOTER" and variables:
        raise refuse(2388073, "A footer cannot have variables.")
    if kind == "HEADER" and len(variables) > 1:
        raise refuse(2388047, "A text header can have one variable.")
    if variables:
        _examples(kind.lower(), part.get("example") or {}, variables, named=named)


def _examples(prefix: str, example: dict, variables: list[str], *, named: bool) -> None:
    if named:
        given = [str(p.get("param_name")) for p in example.get(f"{prefix}_text_named_params") or []]
        if sorted(given) != sorted(variables) or any(v.isdigit() for v in variables):
            raise refuse(
                2388072 if prefix == "body" else 2388047, f"The {prefix}'s named examples must match its variables."
            )
        return
    values = example.get(f"{prefix}_text") or []
    if prefix == "body":
        values = values[0] if values and isinstance(values[0], list) else []
    if variables != [str(i) for i in range(1, len(variables) + 1)] or len(values) != len(variables):
        raise refuse(
            2388072 if prefix == "body" else 2388047, f"The {prefix} needs one example for each of {{{{1}}}}…{{{{n}}}}."
        )


def _buttons(buttons: list, *, category: str) -> None:
    if len(buttons) > 10:
        raise refuse(2388040, "A template can have at most 10 buttons.")
    seen: dict[str, int] = {}
    for button in buttons:
        kind = str(button.get("type") or "").upper()
        seen[kind] = seen.get(kind, 0) + 1
        if kind not in BUTTON_CAPS or seen[kind] > BUTTON_CAPS[kind]:
            raise refuse(2388040, f"Too many {kind or 'unknown'} buttons.")
        if kind == "COPY_CODE":
            if category != "MARKETING" or not 0 < len(str(button.get("example") or "")) <= 15:
                raise refuse(2388040, "A copy-code button is for marketing, with an example of at most 15 characters.")
            continue
        if kind != "OTP" and not 0 < len(str(button.get("text") or "")) <= 25:
            raise refuse(2388040, "A button's text must have 1 to 25 characters.")
        url = str(button.get("url") or "")
        if kind == "URL" and ("{{" in url and (not url.endswith("{{1}}") or not button.get("example"))):
            raise refuse(2388040, "A URL's variable goes at its end, with an example of the whole URL.")
