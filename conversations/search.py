"""Message search: how the words a reader types become a condition on ``Message.body``, and the snippet that
shows them in a hit. ``selectors.message_search`` applies the condition with the membership rules.

On PostgreSQL the condition is ``to_tsvector('simple', body) @@ <tsquery>``, the very expression of the GIN index
``message_body_search`` (migration 0008), so the planner takes the index. The words before the last are read by
``websearch_to_tsquery`` ("quoted phrases", ``or``, ``-excluded``); the last one is a prefix (``ord`` finds
"order") while the reader is still typing it, which the index serves as well. The embedded SQLite mode has no such
index: every word must appear in the text, in any case.

Hits are listed newest first, and that is what costs: the full-text index says which messages hold a word, not in
what order, so the whole search reads every one of them to sort them (a word in one message of twenty of a million
takes 100-200 ms, a word in all of them seconds). A first page is therefore looked for first among the recent
messages: those since the numbers' ``selectors.RECENT_SEARCH_CONVERSATIONS`` most recently active conversations
all were (about as many messages), then those ``selectors.SEARCH_REACH_FURTHER`` times as far back, which the BRIN
index ``message_time_ranges`` lets PostgreSQL read alone. Whenever such messages fill the page, it is exactly the
page the whole search would give (every older hit comes after them); when none do, the whole search runs (a rare
word: its few hits are cheap to sort). ``search_apis.hits_page`` does it, for the API and the inbox alike."""

import re

from django.db import connections
from django.db.models import BooleanField, F, Func, Q, Value

from conversations.models import Message
from conversations.snapshots import contact_snapshot, number_snapshot

# Longer searches are cut: the inbox's search box holds 100 characters.
MAX_SEARCH_LENGTH = 100
SNIPPET_LENGTH = 160
# Characters of context shown before the first matched word.
SNIPPET_LEAD = 50

_WORD = re.compile(r"\w+")
_LAST_WORD = re.compile(r"(\w+)$")
_TRAILING_OR = re.compile(r"\s+or$", re.IGNORECASE)


class _Sql(Func):
    """A SQL fragment around its arguments (``template``), compiled with the query so columns are qualified."""

    def __init__(self, *expressions, template: str, joiner: str = ", ", **extra):
        super().__init__(*expressions, template=template, arg_joiner=joiner, **extra)


def clean_search(text: str) -> str:
    # PostgreSQL text cannot hold NUL; the box's length is the search's.
    return text.replace("\x00", "").strip()[:MAX_SEARCH_LENGTH]


def search_terms(text: str) -> list[str]:
    """The search's words, lowercased, as the snippet highlights them."""
    return [word.lower() for word in _WORD.findall(clean_search(text))]


def _prefix_word(text: str) -> re.Match | None:
    """The last word, when the reader may still be typing it: not excluded (``-word``), not in an open quote."""
    last = _LAST_WORD.search(text)
    if last is None or text.count('"') % 2 == 1:
        return None
    if last.start() > 0 and text[last.start() - 1] == "-":
        return None
    return last


def _tsquery(text: str) -> Func | None:
    last = _prefix_word(text)
    if last is None:
        return _Sql(Value(text), template="websearch_to_tsquery('simple', %(expressions)s)")
    # A \w+ word holds no quote or operator: quoted, it is one lexeme, and :* makes it a prefix.
    prefix = _Sql(Value(f"'{last.group(1).lower()}':*"), template="to_tsquery('simple', %(expressions)s)")
    head = text[: last.start()].strip()
    # "parcel or cour": either, as websearch_to_tsquery reads "or" between two words.
    either = _TRAILING_OR.search(head)
    if either:
        head = head[: either.start()]
    if not _WORD.search(head):
        return prefix
    words = _Sql(Value(head), template="websearch_to_tsquery('simple', %(expressions)s)")
    return _Sql(words, prefix, template="(%(expressions)s)", joiner=" || " if either else " && ")


def body_matches(text: str, *, using: str = "default") -> Q | None:
    """The condition on ``Message.body`` for a search (``None``: the search has no words, so finds nothing)."""
    text = clean_search(text)
    terms = search_terms(text)
    if not terms:
        return None
    if connections[using].vendor != "postgresql":
        condition = Q()
        for term in terms:
            condition &= Q(body__icontains=term)
        return condition
    vector = _Sql(F("body"), template="to_tsvector('simple', %(expressions)s)")
    return Q(_Sql(vector, _tsquery(text), template="%(expressions)s", joiner=" @@ ", output_field=BooleanField()))


def snippet(text: str, terms: list[str]) -> list[dict]:
    """Up to ``SNIPPET_LENGTH`` characters of the text around its first matched word, as parts ``{"text", "match"}``:
    the page shows a matched part in a <mark> it builds itself (the text is the customer's, never HTML)."""
    matches = [m for m in _WORD.finditer(text) if any(m.group().lower().startswith(term) for term in terms)]
    start = 0
    if matches and matches[0].start() > SNIPPET_LEAD:
        start = matches[0].start() - SNIPPET_LEAD
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < matches[0].start() else start
    end = min(len(text), start + SNIPPET_LENGTH)
    parts: list[dict] = []
    at = start
    for match in matches:
        if match.start() < at or match.end() > end:
            continue
        if match.start() > at:
            parts.append({"text": text[at : match.start()], "match": False})
        parts.append({"text": match.group(), "match": True})
        at = match.end()
    if end > at:
        parts.append({"text": text[at:end], "match": False})
    if start > 0:
        parts.insert(0, {"text": "…", "match": False})
    if end < len(text):
        parts.append({"text": "…", "match": False})
    return parts


def message_hit(message: Message, terms: list[str]) -> dict:
    """A found message as the search lists it; needs ``conversation`` with its ``contact`` and ``number`` loaded."""
    conversation = message.conversation
    return {
        "id": message.pk,
        "conversation_id": conversation.pk,
        "contact": contact_snapshot(conversation.contact),
        "number": number_snapshot(conversation.number),
        "status": conversation.status,
        "direction": message.direction,
        "timestamp": message.timestamp.isoformat(),
        "snippet": snippet(message.body, terms),
    }
