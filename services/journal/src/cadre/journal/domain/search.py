"""Tokens for the back-check search. Chinese has no spaces between words, so a CJK run is
indexed as its single characters and its overlapping bigrams; other text as lower-cased
words. A keyword matches where all of its tokens are present, and the SQL then confirms the
exact substring. Pure, and independent of the database's locale."""

from __future__ import annotations

import re
import unicodedata

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_RUNS = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+", re.UNICODE)
MAX_TOKEN_CHARS = 40


def _normalised(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def _is_cjk(run: str) -> bool:
    return bool(re.match(rf"[{_CJK}]", run))


def document_tokens(text: str) -> list[str]:
    """Every token an entry is indexed under, sorted and unique."""
    tokens: set[str] = set()
    for run in _RUNS.findall(_normalised(text)):
        if _is_cjk(run):
            tokens.update(run)
            tokens.update(run[i : i + 2] for i in range(len(run) - 1))
        else:
            tokens.add(run[:MAX_TOKEN_CHARS])
    return sorted(tokens)


def query_tokens(keyword: str) -> list[str]:
    """The tokens a keyword needs: its bigrams (a single character stands for itself)."""
    tokens: set[str] = set()
    for run in _RUNS.findall(_normalised(keyword)):
        if _is_cjk(run):
            tokens.update([run] if len(run) == 1 else (run[i : i + 2] for i in range(len(run) - 1)))
        else:
            tokens.add(run[:MAX_TOKEN_CHARS])
    return sorted(tokens)


def tsquery_text(tokens: list[str]) -> str:
    """A tsquery requiring every token; each lexeme is quoted, so no token is parsed."""
    return " & ".join(
        "'" + token.replace("\\", "\\\\").replace("'", "''") + "'" for token in tokens
    )


def like_pattern(keyword: str) -> str:
    """`%keyword%` for ILIKE, with the wildcard characters escaped."""
    escaped = keyword.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def rarest_token(tokens: list[str], frequencies: dict[str, float]) -> str:
    """The token of a keyword that narrows the search most. A phrase's bigrams occur
    together, so requiring all of them would make the planner think the phrase far rarer
    than it is; the rarest one alone is an honest estimate, and the substring check that
    follows makes the match exact. A token missing from the statistics is rarer than any
    listed."""
    return min(tokens, key=lambda token: (frequencies.get(token, 0.0), token))
