"""Comment rules (pure): length and the keyword filter."""

from __future__ import annotations

import unicodedata

from livecore.errors import ErrorCode, LivecoreError


def _fold(text: str) -> str:
    """NFKC + casefold, no spaces and no invisible format characters (zero-width
    space, soft hyphen …): full-width, case and spacing tricks do not pass."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(c for c in folded if not c.isspace() and unicodedata.category(c) != "Cf")


class CommentRules:
    """Checks a comment's text: at most ``max_chars``, no blocked word (substring match)."""

    def __init__(self, max_chars: int, blocked_words: tuple[str, ...] = ()) -> None:
        self.max_chars = max_chars
        self._blocked = tuple(w for w in (_fold(w) for w in blocked_words) if w)

    def check(self, text: str) -> str:
        """The text to publish, or raise invalid_field / comment_filtered."""
        folded = _fold(text)
        if not folded or len(text) > self.max_chars:  # blank: only spaces or invisibles
            raise LivecoreError(
                ErrorCode.INVALID_FIELD, f"text: must be 1-{self.max_chars} visible characters"
            )
        for word in self._blocked:
            if word in folded:
                raise LivecoreError(
                    ErrorCode.COMMENT_FILTERED, "comment contains a word this room does not allow"
                )
        return text
