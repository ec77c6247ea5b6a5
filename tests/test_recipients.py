from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import gupshup_async as g
from gupshup_async._recipients import NumberSet, mask_recipient

PHONE = st.text(alphabet="0123456789", min_size=7, max_size=15)


@given(PHONE, st.lists(st.sampled_from(["+", " ", "-", "(", ")"]), max_size=6))
def test_separators_are_dropped_and_digits_kept(digits: str, separators: list[str]) -> None:
    messy = "".join(separators) + digits[:3] + "".join(separators) + digits[3:]
    assert g.normalize_recipient(messy) == digits


@given(st.text(min_size=1).filter(lambda s: not all(c in "0123456789+ -()" for c in s)))
def test_anything_but_ascii_digits_and_separators_is_refused(text: str) -> None:
    with pytest.raises(g.InvalidRecipientError):
        g.normalize_recipient(text)


@pytest.mark.parametrize(("given_number", "message"), [("123456", "got 6"), ("1" * 16, "got 16")])
def test_length_limits_name_the_rule(given_number: str, message: str) -> None:
    with pytest.raises(g.InvalidRecipientError, match=f"must have 7-15 digits.*{message}"):
        g.normalize_recipient(given_number)


def test_masking_keeps_two_characters_each_side() -> None:
    assert mask_recipient("919876543210") == "91********10"
    assert mask_recipient("1234") == "****"


@given(st.lists(st.integers(min_value=0, max_value=10**15 - 1), max_size=3000))
def test_number_set_agrees_with_a_set(numbers: list[int]) -> None:
    compact, reference = NumberSet(capacity=4), set()
    for number in numbers:
        assert compact.add(number) is (number not in reference)
        reference.add(number)
    assert len(compact) == len(reference)
