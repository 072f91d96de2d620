import pytest
from notifications.domain.phone import InvalidPhoneNumber, mask, to_e164
from notifications.domain.segments import split


@pytest.mark.parametrize(
    ("text", "encoding", "parts"),
    [
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # each € costs two septets: 160 in all
        ("€" * 81, "GSM-7", 2),
        ("ŵ" * 70, "UCS-2", 1),
        ("ŵ" * 71, "UCS-2", 2),
        ("😀" * 35, "UCS-2", 1),  # outside the BMP: two UTF-16 units each
        ("😀" * 36, "UCS-2", 2),
    ],
)
def test_parts_follow_gsm7_and_ucs2_limits(text: str, encoding: str, parts: int) -> None:
    result = split(text)
    assert result.encoding == encoding
    assert result.count == parts
    assert "".join(result.parts) == text


def test_an_escape_pair_is_never_cut_between_parts() -> None:
    text = "a" * 152 + "€" + "b" * 10  # the € would straddle the 153-septet boundary
    first, second = split(text).parts
    assert first == "a" * 152
    assert second.startswith("€")


def test_a_surrogate_pair_is_never_cut() -> None:
    text = "ŵ" * 66 + "😀" + "x" * 5  # 73 UTF-16 units: the pair would straddle the 67-unit boundary
    first, second = split(text).parts
    assert first == "ŵ" * 66
    assert second == "😀xxxxx"


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("0771 234 567", "+263771234567"),
        ("+263 77 123 4567", "+263771234567"),
        ("263712345678", "+263712345678"),
        ("+27 82 123 4567", "+27821234567"),
        ("+44 7911 123456", "+447911123456"),
    ],
)
def test_numbers_become_e164(raw: str, e164: str) -> None:
    if not raw.startswith(("+", "0")):
        raw = "+" + raw
    assert to_e164(raw) == e164


@pytest.mark.parametrize("raw", ["12345", "not a number", "+263 1", "0771 234"])
def test_invalid_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        to_e164(raw)


def test_mask_keeps_prefix_and_last_digits() -> None:
    assert mask("+263771234567") == "+26377****567"
