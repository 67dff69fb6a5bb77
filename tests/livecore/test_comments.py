"""Comment rules: the length limit and the keyword filter."""

from __future__ import annotations

import pytest

from livecore.comments import CommentRules
from livecore.errors import ErrorCode, LivecoreError


def test_max_length() -> None:
    """A comment of max_chars passes; one character more is invalid_field naming text."""
    rules = CommentRules(10)
    assert rules.check("x" * 10) == "x" * 10
    with pytest.raises(LivecoreError) as info:
        rules.check("x" * 11)
    assert info.value.code is ErrorCode.INVALID_FIELD
    assert info.value.message.startswith("text: ")
    assert "10" in info.value.message


@pytest.mark.parametrize("text", ["", "\u200b\u200b", "\u2060\ufeff\u00ad", "\u200d"])
def test_invisible_only_is_blank(text: str) -> None:
    """A comment of only zero-width or invisible format characters is refused like a
    blank one, with the room's limit in the message."""
    with pytest.raises(LivecoreError) as info:
        CommentRules(200).check(text)
    assert info.value.code is ErrorCode.INVALID_FIELD and "1-200" in info.value.message


def test_length_counts_characters_not_bytes() -> None:
    """The limit is in characters, so multi-byte text is not cut short."""
    assert CommentRules(4).check("桃子好甜") == "桃子好甜"


@pytest.mark.parametrize(
    "text",
    [
        "spam",
        "buy spam now",
        "SPAM",
        "SpAm!",
        "ｓｐａｍ",  # full-width, folded by NFKC
        "ＳＰＡＭ",
        "s p a m",
        "s\tp\na  m",
        "s\u3000pam",  # ideographic space
        "nospamhere",  # substring match
    ],
)
def test_blocked_word_is_filtered(text: str) -> None:
    """A blocked word is found whatever its case, width or the spaces inserted in it."""
    rules = CommentRules(200, ("spam",))
    with pytest.raises(LivecoreError) as info:
        rules.check(text)
    assert info.value.code is ErrorCode.COMMENT_FILTERED


def test_blocked_words_are_folded_too() -> None:
    """Blocked words given in upper case, full width or with spaces match plain text."""
    rules = CommentRules(200, ("ＢＡＤ Word", "Scam"))
    for text in ("badword", "a scam", "BADWORD"):
        with pytest.raises(LivecoreError) as info:
            rules.check(text)
        assert info.value.code is ErrorCode.COMMENT_FILTERED


def test_empty_blocked_words_are_ignored() -> None:
    """Empty or blank blocked words do not block every comment."""
    rules = CommentRules(200, ("", "   ", "\u3000"))
    assert rules.check("hello") == "hello"


@pytest.mark.parametrize(
    "text",
    ["hello", "  Peach, 桃子! ", "ｆｕｌｌ　ｗｉｄｔｈ", "s-p", "sp-am"],
)
def test_clean_text_passes_unchanged(text: str) -> None:
    """Text without a blocked word is returned exactly as given (not trimmed or folded)."""
    assert CommentRules(200, ("spam", "scam")).check(text) is text


def test_no_blocked_words() -> None:
    """Without blocked words only the length is checked."""
    assert CommentRules(200).check("spam") == "spam"


def test_length_is_checked_before_words() -> None:
    """A too-long comment is invalid_field even if it also holds a blocked word."""
    with pytest.raises(LivecoreError) as info:
        CommentRules(5, ("spam",)).check("spam spam")
    assert info.value.code is ErrorCode.INVALID_FIELD


@pytest.mark.parametrize("text", ["ba\u200bd", "b\u00adad", "B\u200dAD"])
def test_invisible_characters_do_not_hide_a_word(text: str) -> None:
    """Zero-width and soft-hyphen characters inside a blocked word do not get it through."""
    with pytest.raises(LivecoreError) as info:
        CommentRules(200, ("bad",)).check(text)
    assert info.value.code is ErrorCode.COMMENT_FILTERED
