"""The sandbox's message templates and Meta's checks of a template send (docs/meta.md §5 and §8).

Templates are listed by ``GET /{waba-id}/message_templates`` in Meta's shape and replaced through
``POST /_sandbox/config {"templates": [...]}``; a send's parameters are checked against the stored template:
positional (``{{1}}``) by count, named (``{{first_name}}``) by ``parameter_name``, buttons by index.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from .errors import GraphError, invalid, missing
from .schema import check_object

# The keys of a template send's objects (Meta's OAS ``TemplateObject``, ``LanguageObject``, ``TemplateComponent``).
TEMPLATE_FIELDS = {"name": str, "language": dict, "components": list}
LANGUAGE_FIELDS = {"code": str, "policy": str}
COMPONENT_FIELDS = {"type": str, "sub_type": str, "index": (str, int), "parameters": list}
# A parameter carries its value under its type's name (OAS ``ParameterObject``), a named one its parameter_name.
PARAMETER_VALUES = {
    "text": str, "payload": str, "coupon_code": str, "currency": dict, "date_time": dict, "image": dict,
    "video": dict, "document": dict, "location": dict, "action": dict, "product": dict,
}  # fmt: skip

DEFAULT_TEMPLATES: list[dict[str, Any]] = [
    {
        "id": "1192339204654487",
        "name": "hello_world",
        "language": "en_US",
        "status": "APPROVED",
        "category": "UTILITY",
        "parameter_format": "POSITIONAL",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Hello World"},
            {
                "type": "BODY",
                "text": "Welcome and congratulations!! This message demonstrates your ability to send a WhatsApp "
                "message notification from the Cloud API, hosted by Meta. Thank you for taking the time to test "
                "with us.",
            },
            {"type": "FOOTER", "text": "WhatsApp Business Platform sample message"},
        ],
    },
    {
        "id": "1311458016538612",
        "name": "order_update",
        "language": "en_US",
        "status": "APPROVED",
        "category": "UTILITY",
        "parameter_format": "POSITIONAL",
        "components": [
            {
                "type": "BODY",
                "text": "Hi {{1}}, your order {{2}} has shipped and is on its way. 📦",
                "example": {"body_text": [["Sam", "#10423"]]},
            },
            {"type": "FOOTER", "text": "Reply STOP to opt out"},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Track my order"}]},
        ],
    },
    {
        "id": "874520193348871",
        "name": "appointment_reminder",
        "language": "pt_BR",
        "status": "APPROVED",
        "category": "UTILITY",
        "parameter_format": "POSITIONAL",
        "components": [
            {
                "type": "BODY",
                "text": "Olá! Lembrete: sua consulta é amanhã às {{1}}. Responda SIM para confirmar.",
                "example": {"body_text": [["14:30"]]},
            },
            {
                "type": "BUTTONS",
                "buttons": [{"type": "QUICK_REPLY", "text": "SIM"}, {"type": "QUICK_REPLY", "text": "Remarcar"}],
            },
        ],
    },
    {
        "id": "2093311084712290",
        "name": "summer_sale",
        "language": "en_US",
        "status": "APPROVED",
        "category": "MARKETING",
        "parameter_format": "POSITIONAL",
        "components": [
            {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1hZ2UvanBlZw==:ARb"]}},
            {
                "type": "BODY",
                "text": "Summer sale! {{1}} off everything until Sunday.",
                "example": {"body_text": [["20%"]]},
            },
        ],
    },
]

_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
MEDIA_HEADER_FORMATS = {"IMAGE": "image", "VIDEO": "video", "DOCUMENT": "document"}
TEMPLATE_STATUS_ERRORS = {"PAUSED": 132015, "DISABLED": 132016}


def default_templates() -> list[dict[str, Any]]:
    return copy.deepcopy(DEFAULT_TEMPLATES)


def placeholder_count(text: str) -> int:
    return len(set(_PLACEHOLDER.findall(text or "")))


def check_templates(templates: Any) -> list[dict[str, Any]]:
    """Validate a replacement list from the control API (name, language, components are required)."""
    if not isinstance(templates, list):
        raise TypeError("templates must be a list")
    checked = []
    for index, template in enumerate(templates):
        if not isinstance(template, dict) or not template.get("name") or not template.get("language"):
            raise ValueError(f"templates[{index}] needs at least name and language")
        item = {"status": "APPROVED", "category": "UTILITY", "parameter_format": "POSITIONAL", "components": []}
        item.update(copy.deepcopy(template))
        item.setdefault("id", str(10**15 + index))
        checked.append(item)
    return checked


def find_template(templates: list[dict[str, Any]], *, name: str, language: str) -> dict[str, Any]:
    """The template Meta would use, or Meta's error: 132001 when the name+language pair is unknown or not
    approved, 132015/132016 when it is paused/disabled."""
    for template in templates:
        if template.get("name") == name and template.get("language") == language:
            status = str(template.get("status") or "APPROVED").upper()
            if status in TEMPLATE_STATUS_ERRORS:
                raise GraphError(TEMPLATE_STATUS_ERRORS[status], f"Template {name} ({language}) is {status.lower()}.")
            if status != "APPROVED":
                raise GraphError(132001, f"template name ({name}) does not exist in {language}")
            return template
    raise GraphError(132001, f"template name ({name}) does not exist in {language}")


def validate_template_send(templates: list[dict[str, Any]], template: Any) -> dict[str, Any]:
    """Checks of ``{"name", "language": {"code"}, "components"?}`` against the stored template."""
    check_object(template, where="template", fields=TEMPLATE_FIELDS)
    name = template.get("name")
    if not name:
        raise missing("template['name']")
    language = template.get("language")
    if language is None:
        raise missing("template['language']")
    code = check_object(language, where="template['language']", fields=LANGUAGE_FIELDS).get("code")
    if not code:
        raise missing("template['language']['code']")
    stored = find_template(templates, name=name, language=code)
    _check_against_stored(stored, sent=_sent_parameters(template))
    return stored


def _sent_parameters(template: dict[str, Any]) -> dict[str, list[Any]]:
    """The parameters sent for the header, the body and each button (``button:<index>``), each checked."""
    sent: dict[str, list[Any]] = {}
    for index, component in enumerate(template.get("components", [])):
        check_object(component, where=f"template['components'][{index}]", fields=COMPONENT_FIELDS)
        if not component.get("type"):
            raise missing(f"template['components'][{index}]['type']")
        kind = component["type"].lower()
        parameters = component.get("parameters", [])
        for p_index, parameter in enumerate(parameters):
            _check_parameter(parameter, where=f"template['components'][{index}]['parameters'][{p_index}]")
        if kind in ("header", "body"):
            sent[kind] = parameters
        elif kind == "button":
            sub_type = str(component.get("sub_type") or "").lower()
            sent[f"button:{component.get('index')}"] = [{**p, "sub_type": sub_type} for p in parameters]
    return sent


def _check_against_stored(stored: dict[str, Any], *, sent: dict[str, list[Any]]) -> None:
    """As many parameters as the stored template's placeholders (by name when it has named ones), a header
    of its media type, and a value for each button that takes one."""
    for component in stored.get("components", []):
        kind = str(component.get("type", "")).lower()
        if kind == "body":
            _expect_parameters("body", component.get("text", ""), sent.get("body", []))
        elif kind == "header":
            header_format = str(component.get("format") or "TEXT").upper()
            if header_format == "TEXT":
                _expect_parameters("header", component.get("text", ""), sent.get("header", []))
            elif header_format in MEDIA_HEADER_FORMATS:
                media_type = MEDIA_HEADER_FORMATS[header_format]
                params = sent.get("header", [])
                if len(params) != 1 or params[0].get("type") != media_type:
                    raise GraphError(
                        132012,
                        f"header: Format mismatch, expected {header_format}, received "
                        f"{(params[0].get('type') or 'nothing').upper() if params else 'nothing'}",
                    )
        elif kind == "buttons":
            for index, button in enumerate(component.get("buttons") or []):
                _expect_button_value(index, button, sent.get(f"button:{index}", []))


# A button's value: the sub_type and parameter type Meta wants for it (docs/meta.md §8).
BUTTON_VALUES = {"URL": ("url", "text"), "COPY_CODE": ("copy_code", "coupon_code")}


def _expect_button_value(index: int, button: dict[str, Any], parameters: list[Any]) -> None:
    kind = str(button.get("type") or "").upper()
    if kind not in BUTTON_VALUES or (kind == "URL" and "{{" not in str(button.get("url") or "")):
        return
    sub_type, value_type = BUTTON_VALUES[kind]
    if len(parameters) != 1 or parameters[0].get("sub_type") != sub_type or parameters[0].get("type") != value_type:
        raise GraphError(
            132000, f"button at index {index} ({sub_type}): expected one {value_type} parameter, got {len(parameters)}"
        )


def _expect_parameters(kind: str, text: str, parameters: list[Any]) -> None:
    names = sorted(set(_PLACEHOLDER.findall(text or "")))
    if any(not name.isdigit() for name in names):
        sent = sorted(str(p.get("parameter_name") or "") for p in parameters)
        if sent != names:
            raise GraphError(
                132000, f"{kind}: parameter names ({', '.join(sent) or 'none'}) do not match ({', '.join(names)})"
            )
        return
    _expect_count(kind, len(names), parameters)


def _check_parameter(parameter: Any, *, where: str) -> None:
    if not isinstance(parameter, dict) or not isinstance(parameter.get("type"), str):
        raise missing(f"{where}['type']")
    kind = parameter["type"]
    if kind not in PARAMETER_VALUES:
        raise invalid(f"{where}['type']", f'must be one of {{text, currency, date_time, image, ...}} - got "{kind}".')
    check_object(parameter, where=where, fields={"type": str, "parameter_name": str, kind: PARAMETER_VALUES[kind]})
    if kind == "text" and not parameter.get("text"):
        raise missing(f"{where}['text']")
    if kind in ("image", "video", "document"):
        media = parameter.get(kind) or {}
        if not (media.get("id") or media.get("link")):
            raise missing(f"{where}['{kind}']")


def _expect_count(kind: str, expected: int, parameters: list[Any]) -> None:
    if len(parameters) != expected:
        raise GraphError(
            132000,
            f"{kind}: number of localizable_params ({len(parameters)}) does not match the expected number of "
            f"params ({expected})",
        )
