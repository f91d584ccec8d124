"""Meta's message-template shapes, built and read in this one place (docs/meta.md §8).

Two directions:

* **Sending** an approved template: ``send_slots`` lists the values a stored template needs (a header
  parameter or media, body parameters positional ``{{1}}`` or named ``{{first_name}}``, a URL button's suffix,
  a copy-code button's code), ``send_components`` builds Meta's ``template.components`` from them and
  ``filled_text`` the text the customer will read.
* **Creating** or editing one: ``creation_json`` checks a definition as Meta would (names, categories,
  component limits, parameters against their examples) and builds Meta's creation JSON. Every refusal names
  the input field at fault.

Pure functions over dicts: no database, no HTTP.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")
HEADER_FORMATS = ("TEXT", "IMAGE", "VIDEO", "DOCUMENT")
MEDIA_FORMATS = {"IMAGE": "image", "VIDEO": "video", "DOCUMENT": "document"}
BUTTON_KINDS = ("QUICK_REPLY", "URL", "PHONE_NUMBER", "COPY_CODE")
NAME = re.compile(r"[a-z0-9_]{1,512}")
# Meta's locale codes: ``en``, ``en_US``, ``pt_BR``, ``zh_CN``, ``es_LA`` ...
LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")
PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
PARAMETER_NAME = re.compile(r"[a-z_][a-z0-9_]*")
LIMITS = {"header": 60, "body": 1024, "footer": 60, "button_text": 25, "url": 2000, "phone": 20, "code": 15}
BUTTONS_MAX = 10
# How many of each button kind a template may have (quick replies only by the total).
BUTTON_MAX = {"URL": 2, "PHONE_NUMBER": 1, "COPY_CODE": 1, "QUICK_REPLY": BUTTONS_MAX}
COPY_CODE_TEXT = "Copy offer code"


class TemplateInvalid(ValueError):
    """A definition or a send's values Meta would refuse; ``field`` is the input field at fault."""

    def __init__(self, field: str, detail: str):
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


# --- reading a stored template -------------------------------------------------------------------------


def component(components: list[dict], kind: str) -> dict | None:
    return next((c for c in components or [] if str(c.get("type", "")).upper() == kind), None)


def placeholders(text: str) -> list[str]:
    """The parameter names in text order, each once: ``["1", "2"]`` or ``["first_name"]``."""
    seen: list[str] = []
    for name in PLACEHOLDER.findall(text or ""):
        if name not in seen:
            seen.append(name)
    return seen


def is_named(components: list[dict]) -> bool:
    names = [*placeholders((component(components, "HEADER") or {}).get("text", ""))]
    names += placeholders((component(components, "BODY") or {}).get("text", ""))
    return any(not name.isdigit() for name in names)


def buttons(components: list[dict]) -> list[dict]:
    return list((component(components, "BUTTONS") or {}).get("buttons") or [])


@dataclass(frozen=True)
class Slot:
    """One value a send of the template needs."""

    key: str  # "header", "body.first_name", "body.1", "button.0"
    part: str  # header | body | button
    name: str  # the parameter's name or position; the button's index
    kind: str  # text | image | video | document | url_suffix | coupon_code
    label: str
    example: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"key": self.key, "part": self.part, "name": self.name, "kind": self.kind, "label": self.label,
                "example": self.example}  # fmt: skip


def _examples(part: dict, names: list[str], *, positional_key: str, named_key: str) -> dict[str, str]:
    example = part.get("example") or {}
    found = {str(p.get("param_name")): str(p.get("example", "")) for p in example.get(named_key) or []}
    values = example.get(positional_key) or []
    if values and isinstance(values[0], list):
        values = values[0]  # the body's examples are a list inside a list
    found.update({str(i): str(v) for i, v in enumerate(values, start=1)})
    return {name: found.get(name, "") for name in names}


def send_slots(components: list[dict]) -> list[Slot]:
    slots: list[Slot] = []
    header = component(components, "HEADER")
    if header:
        header_format = str(header.get("format") or "TEXT").upper()
        if header_format in MEDIA_FORMATS:
            kind = MEDIA_FORMATS[header_format]
            slots.append(Slot("header", "header", "", kind, f"Header {kind}"))
        else:
            names = placeholders(header.get("text", ""))
            examples = _examples(header, names, positional_key="header_text", named_key="header_text_named_params")
            slots += [Slot("header", "header", n, "text", f"Header {{{{{n}}}}}", examples[n]) for n in names[:1]]
    body = component(components, "BODY") or {}
    names = placeholders(body.get("text", ""))
    examples = _examples(body, names, positional_key="body_text", named_key="body_text_named_params")
    slots += [Slot(f"body.{n}", "body", n, "text", f"{{{{{n}}}}}", examples[n]) for n in names]
    for index, button in enumerate(buttons(components)):
        kind = str(button.get("type", "")).upper()
        if kind == "URL" and placeholders(button.get("url", "")):
            example = (button.get("example") or [""])[0] if isinstance(button.get("example"), list) else ""
            slots.append(Slot(f"button.{index}", "button", str(index), "url_suffix",
                              f"Link ending for “{button.get('text', '')}”", str(example)))  # fmt: skip
        elif kind == "COPY_CODE":
            example = button.get("example")
            example = example[0] if isinstance(example, list) and example else example
            slots.append(
                Slot(f"button.{index}", "button", str(index), "coupon_code", "Code to copy", str(example or ""))
            )
    return slots


def template_parts(components: list[dict]) -> dict[str, Any]:
    """What a page shows of a stored template (its preview) and the values a send of it needs."""
    header = component(components, "HEADER")
    footer = component(components, "FOOTER") or {}
    return {
        "parameter_format": "named" if is_named(components) else "positional",
        "header": {"format": str(header.get("format") or "TEXT").upper(), "text": str(header.get("text") or "")}
        if header
        else None,
        "body": str((component(components, "BODY") or {}).get("text") or ""),
        "footer": str(footer.get("text") or ""),
        "buttons": [
            {k: str(b[k]) for k in ("type", "text", "url", "phone_number") if b.get(k)} for b in buttons(components)
        ],
        "slots": [slot.as_dict() for slot in send_slots(components)],
    }


def filled_text(text: str, values: dict[str, str], *, prefix: str) -> str:
    return PLACEHOLDER.sub(lambda m: values.get(f"{prefix}{m.group(1)}", m.group(0)), text or "")


def send_components(components: list[dict], values: dict[str, str], *, header_media: dict | None = None) -> list[dict]:
    """Meta's ``template.components`` for a send; ``values`` by slot key (every slot filled, checked by the
    caller), ``header_media`` the media object (``{"id"}`` or ``{"link"}``, + ``filename`` for documents)."""
    named = is_named(components)
    sent: list[dict] = []

    def text_parameter(slot: Slot) -> dict:
        parameter = {"type": "text", "text": values[slot.key]}
        return {"type": "text", "parameter_name": slot.name, "text": values[slot.key]} if named else parameter

    slots = send_slots(components)
    header = [s for s in slots if s.part == "header"]
    if header and header[0].kind in MEDIA_FORMATS.values():
        kind = header[0].kind
        sent.append({"type": "header", "parameters": [{"type": kind, kind: dict(header_media or {})}]})
    elif header:
        sent.append({"type": "header", "parameters": [text_parameter(header[0])]})
    body = [s for s in slots if s.part == "body"]
    if body:
        sent.append({"type": "body", "parameters": [text_parameter(s) for s in body]})
    for slot in slots:
        if slot.kind == "url_suffix":
            parameter = {"type": "text", "text": values[slot.key]}
            sent.append({"type": "button", "sub_type": "url", "index": slot.name, "parameters": [parameter]})
        elif slot.kind == "coupon_code":
            parameter = {"type": "coupon_code", "coupon_code": values[slot.key]}
            sent.append({"type": "button", "sub_type": "copy_code", "index": slot.name, "parameters": [parameter]})
    return sent


def check_send_values(components: list[dict], values: dict[str, str]) -> None:
    """Every text slot filled, within Meta's limits (a media header is the caller's to check)."""
    for slot in send_slots(components):
        if slot.kind in MEDIA_FORMATS.values():
            continue
        value = (values.get(slot.key) or "").strip()
        if not value:
            raise TemplateInvalid(slot.key, f"Fill in {slot.label}.")
        if slot.kind == "coupon_code" and len(value) > LIMITS["code"]:
            raise TemplateInvalid(slot.key, f"A code to copy is at most {LIMITS['code']} characters.")
        if slot.kind == "url_suffix" and any(ch.isspace() for ch in value):
            raise TemplateInvalid(slot.key, "A link ending has no spaces.")


# --- creating one -----------------------------------------------------------------------------------------


def creation_json(definition: dict[str, Any], *, header_handle: str = "") -> dict[str, Any]:
    """Meta's ``POST /{waba-id}/message_templates`` body for a definition (the API's input shape, see
    ``template_apis``), or ``TemplateInvalid``. ``header_handle`` is the uploaded media sample's handle."""
    name = str(definition.get("name") or "")
    if not NAME.fullmatch(name):
        raise TemplateInvalid("name", "Use lowercase letters, digits and underscores only, at most 512.")
    language = str(definition.get("language") or "")
    if not LANGUAGE.fullmatch(language):
        raise TemplateInvalid("language", "Use a locale code such as en_US or pt_BR.")
    return {"name": name, "language": language, **edit_json(definition, header_handle=header_handle)}


def edit_json(definition: dict[str, Any], *, header_handle: str = "") -> dict[str, Any]:
    """What an edit sends (``POST /{template-id}``): the category, all the components, the parameter format."""
    category = str(definition.get("category") or "").upper()
    if category not in CATEGORIES:
        raise TemplateInvalid("category", f"Choose one of {', '.join(CATEGORIES)}.")
    if category == "AUTHENTICATION":
        return {"category": category, "components": _authentication(definition)}
    components: list[dict] = []
    header = _header(definition.get("header"), header_handle=header_handle)
    body_text, body = _body(definition.get("body"))
    names = placeholders(body_text) + placeholders((header or {}).get("text", ""))
    named = any(not n.isdigit() for n in names)
    if named and any(n.isdigit() for n in names):
        raise TemplateInvalid("body.text", "Use numbered {{1}} or named {{first_name}} parameters, not both.")
    if header:
        components.append(header)
    components.append(body)
    footer = str(definition.get("footer") or "")
    if footer:
        if len(footer) > LIMITS["footer"]:
            raise TemplateInvalid("footer", f"A footer is at most {LIMITS['footer']} characters.")
        if placeholders(footer):
            raise TemplateInvalid("footer", "A footer takes no parameters.")
        components.append({"type": "FOOTER", "text": footer})
    button_list = _buttons(definition.get("buttons") or [], category=category)
    if button_list:
        components.append({"type": "BUTTONS", "buttons": button_list})
    return {"category": category, "parameter_format": "named" if named else "positional", "components": components}


def _authentication(definition: dict) -> list[dict]:
    # Meta writes an authentication template's text itself: the code, a security note, a copy-code button.
    for part in ("header", "footer", "buttons"):
        if definition.get(part):
            raise TemplateInvalid(part, "Authentication templates have Meta's fixed text: leave this empty.")
    return [
        {"type": "BODY", "add_security_recommendation": True},
        {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE", "text": "Copy code"}]},
    ]


def _check_parameters(text: str, *, field: str) -> list[str]:
    names = placeholders(text)
    if all(n.isdigit() for n in names):
        if names != [str(i) for i in range(1, len(names) + 1)]:
            raise TemplateInvalid(field, "Number the parameters {{1}}, {{2}}, … in order, without gaps.")
    else:
        bad = next((n for n in names if not PARAMETER_NAME.fullmatch(n)), None)
        if bad is not None:
            raise TemplateInvalid(field, f"“{bad}” is not a parameter name: lowercase letters, digits and _.")
    return names


def _examples_for(names: list[str], examples: Any, *, field: str) -> list[str]:
    """The examples in parameter order: a list (positional) or an object by name (named)."""
    if isinstance(examples, dict):
        given = {str(k): str(v) for k, v in examples.items()}
    elif isinstance(examples, list):
        given = {str(i): str(v) for i, v in enumerate(examples, start=1)}
    elif examples in (None, ""):
        given = {}
    else:
        raise TemplateInvalid(field, "Give one example per parameter.")
    missing = [n for n in names if not given.get(n, "").strip()]
    extra = sorted(set(given) - set(names))
    if missing or extra:
        wanted = ", ".join(f"{{{{{n}}}}}" for n in names) or "none"
        raise TemplateInvalid(field, f"The examples must match the parameters ({wanted}).")
    return [given[n].strip() for n in names]


def _header(header: Any, *, header_handle: str) -> dict | None:
    if not header:
        return None
    if not isinstance(header, dict):
        raise TemplateInvalid("header", "A header is an object with a format.")
    header_format = str(header.get("format") or "").upper()
    if header_format not in HEADER_FORMATS:
        raise TemplateInvalid("header.format", f"Choose one of {', '.join(HEADER_FORMATS)}.")
    if header_format in MEDIA_FORMATS:
        if not header_handle:
            raise TemplateInvalid("header.file", f"A {header_format.lower()} header needs a sample file.")
        return {"type": "HEADER", "format": header_format, "example": {"header_handle": [header_handle]}}
    text = str(header.get("text") or "")
    names = _checked_text(text, field="header.text", limit=LIMITS["header"], what="the header's text")
    if len(names) > 1:
        raise TemplateInvalid("header.text", "A text header takes at most one parameter.")
    result: dict[str, Any] = {"type": "HEADER", "format": "TEXT", "text": text}
    if names:
        example = header.get("example")
        example = example if isinstance(example, list | dict) else [example]
        result["example"] = _example_json(names, _examples_for(names, example, field="header.example"), of="header")
    return result


def _checked_text(text: str, *, field: str, limit: int, what: str) -> list[str]:
    """The text's parameter names, once it is there, within its limit and its parameters well formed."""
    if not text.strip():
        raise TemplateInvalid(field, f"Write {what}.")
    if len(text) > limit:
        raise TemplateInvalid(field, f"Keep {what} to {limit} characters.")
    return _check_parameters(text, field=field)


def _example_json(names: list[str], examples: list[str], *, of: str) -> dict[str, Any]:
    """Meta's ``example`` of a header or a body: positional values (the body's in a list inside a list) or
    ``{param_name, example}`` pairs."""
    if names[0].isdigit():
        return {f"{of}_text": [examples] if of == "body" else examples}
    pairs = [{"param_name": n, "example": e} for n, e in zip(names, examples, strict=True)]
    return {f"{of}_text_named_params": pairs}


def _body(body: Any) -> tuple[str, dict]:
    body = body if isinstance(body, dict) else {"text": body}
    text = str(body.get("text") or "")
    names = _checked_text(text, field="body.text", limit=LIMITS["body"], what="the message's text")
    result: dict[str, Any] = {"type": "BODY", "text": text}
    if names:
        result["example"] = _example_json(
            names, _examples_for(names, body.get("examples"), field="body.examples"), of="body"
        )
    return text, result


def _buttons(items: Any, *, category: str) -> list[dict]:
    if not isinstance(items, list):
        raise TemplateInvalid("buttons", "Buttons are a list.")
    if len(items) > BUTTONS_MAX:
        raise TemplateInvalid("buttons", f"A template has at most {BUTTONS_MAX} buttons.")
    built: list[dict] = []
    kinds: list[str] = []
    for index, item in enumerate(items):
        field = f"buttons.{index}"
        item = item if isinstance(item, dict) else {}
        kind = str(item.get("type") or "").upper()
        if kind not in BUTTON_KINDS:
            raise TemplateInvalid(f"{field}.type", f"Choose one of {', '.join(BUTTON_KINDS)}.")
        kinds.append(kind)
        if kinds.count(kind) > BUTTON_MAX[kind]:
            raise TemplateInvalid(f"{field}.type", f"A template has at most {BUTTON_MAX[kind]} such button(s).")
        built.append(_button(item, kind=kind, field=field, category=category))
    quick = [i for i, k in enumerate(kinds) if k == "QUICK_REPLY"]
    if quick and quick[-1] - quick[0] + 1 != len(quick):
        raise TemplateInvalid("buttons", "Keep the quick replies together, before or after the other buttons.")
    return built


def _button(item: dict, *, kind: str, field: str, category: str) -> dict:
    if kind == "COPY_CODE":
        if category != "MARKETING":
            raise TemplateInvalid(f"{field}.type", "Copy-code buttons are for marketing templates only.")
        code = str(item.get("example") or "").strip()
        if not code or len(code) > LIMITS["code"]:
            raise TemplateInvalid(f"{field}.example", f"Give an example code of 1 to {LIMITS['code']} characters.")
        return {"type": "COPY_CODE", "example": code}
    text = str(item.get("text") or "").strip()
    if not text or len(text) > LIMITS["button_text"]:
        raise TemplateInvalid(f"{field}.text", f"A button's label is 1 to {LIMITS['button_text']} characters.")
    if kind == "QUICK_REPLY":
        return {"type": "QUICK_REPLY", "text": text}
    if kind == "PHONE_NUMBER":
        phone = str(item.get("phone_number") or "").strip()
        if not re.fullmatch(r"\+?[0-9]{6,19}", phone):
            raise TemplateInvalid(f"{field}.phone_number", "Give the phone number in +E.164 form.")
        return {"type": "PHONE_NUMBER", "text": text, "phone_number": phone}
    return _url_button(item, text=text, field=field)


def _url_button(item: dict, *, text: str, field: str) -> dict:
    url = str(item.get("url") or "").strip()
    if not re.fullmatch(r"https?://[^\s{}]+(\{\{1\}\})?", url) or len(url) > LIMITS["url"]:
        raise TemplateInvalid(
            f"{field}.url", f"Give an http(s) address of at most {LIMITS['url']} characters; {{{{1}}}} only at its end."
        )
    button: dict[str, Any] = {"type": "URL", "text": text, "url": url}
    if url.endswith("{{1}}"):
        example = str(item.get("example") or "").strip()
        if not example.startswith(url[:-5]) or len(example) == len(url) - 5 or any(c.isspace() for c in example):
            raise TemplateInvalid(f"{field}.example", "Give an example of the whole address, its ending filled in.")
        button["example"] = [example]
    return button
