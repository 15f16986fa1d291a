"""Message search text: what a user typed -> the terms searched, and a highlighted snippet.

Pure functions, no I/O. Whatever the user types is taken literally: full-text operators
(`+ - < > ( ) ~ * " @`) never reach the engine as operators. Each whitespace-separated chunk
becomes one quoted phrase of its words, and every phrase is required, so `e-mail` finds
"e-mail" and "e mail", and `app*` finds the word "app", not "apple".
"""
from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass

WORD = re.compile(r"\w+")
MAX_TERMS = 10          # phrases per query: each one is a separate index look-up
SNIPPET_CHARS = 160     # about two lines of a phone's result list
MARK_OPEN, MARK_CLOSE = "<mark>", "</mark>"
MAX_SCOPE_TOKENS = 500  # conversations + groups named in one query (~17 KB of query text)


@dataclass(frozen=True)
class SearchTerms:
    phrases: tuple[tuple[str, ...], ...]   # each: the words of one chunk, in order

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(word for phrase in self.phrases for word in phrase)

    def __bool__(self) -> bool:
        return bool(self.phrases)


def search_terms(text: str, *, min_word_chars: int, stopwords: frozenset[str]) -> SearchTerms:
    """The phrases to look for. A chunk made only of words the index does not hold (shorter
    than ``min_word_chars``, or stopwords) is dropped: requiring it would match nothing."""
    phrases: list[tuple[str, ...]] = []
    for chunk in text.split():
        words = tuple(WORD.findall(chunk))
        if any(len(w) >= min_word_chars and fold(w) not in stopwords for w in words):
            phrases.append(words)
        if len(phrases) == MAX_TERMS:
            break
    return SearchTerms(tuple(phrases))


def boolean_query(terms: SearchTerms) -> str:
    """The AGAINST (... IN BOOLEAN MODE) argument: every phrase required. Words are runs of
    letters, digits and underscores only, so nothing in them is an operator or a quote."""
    return " ".join('+"' + " ".join(phrase) + '"' for phrase in terms.phrases)


def scope_token(conversation_id: str | None, group_id: str | None) -> str | None:
    """The word the index holds for a message's conversation ("zc" + the id's hex digits)
    or group ("zg" + …): messages.search_scope, sql/009_search_scope.sql."""
    if group_id is not None:
        return "zg" + group_id.replace("-", "")
    if conversation_id is not None:
        return "zc" + conversation_id.replace("-", "")
    return None


def scope_query_fits(scope_tokens: list[str]) -> bool:
    return 0 < len(scope_tokens) <= MAX_SCOPE_TOKENS


def scoped_query(terms: SearchTerms, scope_tokens: list[str]) -> str:
    """``boolean_query`` that also requires one of the scope words: the engine keeps only
    matches in those conversations and groups before any row is read."""
    return boolean_query(terms) + " +(" + " ".join(scope_tokens) + ")"


def fold(text: str) -> str:
    """Case- and accent-insensitive form, as the utf8mb4_unicode_ci collation compares."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _folded_with_positions(text: str) -> tuple[str, list[int]]:
    """``fold(text)`` and, for each of its characters, the index of the character of
    ``text`` it came from (folding can change lengths: "ß" -> "ss")."""
    out: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        folded = fold(char)
        out.append(folded)
        origin.extend([index] * len(folded))
    return "".join(out), origin


def match_spans(content: str, words: tuple[str, ...]) -> list[tuple[int, int]]:
    """Where the words occur in ``content`` as whole words: sorted, non-overlapping
    (start, end) character ranges of ``content``."""
    folded, origin = _folded_with_positions(content)
    wanted = {fold(w) for w in words if w}
    spans = []
    for match in WORD.finditer(folded):
        if match.group() in wanted:
            start = origin[match.start()]
            end = origin[match.end() - 1] + 1
            if spans and start < spans[-1][1]:
                continue
            spans.append((start, end))
    return spans


def snippet(content: str, words: tuple[str, ...], width: int = SNIPPET_CHARS) -> str:
    """About ``width`` characters of ``content`` around its first match, as HTML: the text
    escaped, each match inside <mark>…</mark>, and "…" where text was cut."""
    spans = match_spans(content, words)
    if len(content) <= width:
        start, end = 0, len(content)
    else:
        first = spans[0][0] if spans else 0
        start = max(0, min(first - width // 3, len(content) - width))
        end = min(len(content), start + width)
        # Cut at word boundaries when one is near, so no word is shown half.
        if start > 0:
            space = content.find(" ", start, start + 20)
            start = space + 1 if space != -1 and space < first else start
        if end < len(content):
            space = content.rfind(" ", end - 20, end)
            end = space if space > start else end
    parts = ["…"] if start > 0 else []
    cursor = start
    for span_start, span_end in spans:
        if span_end <= start or span_start >= end:
            continue
        span_start, span_end = max(span_start, start), min(span_end, end)
        parts.append(html.escape(content[cursor:span_start]))
        parts.append(MARK_OPEN + html.escape(content[span_start:span_end]) + MARK_CLOSE)
        cursor = span_end
    parts.append(html.escape(content[cursor:end]))
    if end < len(content):
        parts.append("…")
    return "".join(parts)
