"""Code formats: what the import accepts as one PSN code, and what is ever shown of a code."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from codeshelf.catalog.codes import MalformedCodeError, format_for, mask, mask_raw

PSN = format_for("psn")
CANONICAL = re.compile(r"[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}")
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@pytest.mark.parametrize(
    "raw",
    [
        "ABCD-EFGH-IJ12",
        "abcd-efgh-ij12",
        "ABCDEFGHIJ12",
        "abcd efgh ij12",
        "  AbCd\tEfGh-iJ12 \r\n",
        "A-B-C-D-E-F-G-H-I-J-1-2",
        "ABCD--EFGH  IJ12",
    ],
)
def test_psn_codes_normalize_to_the_canonical_grouping(raw: str) -> None:
    assert PSN.normalize(raw) == "ABCD-EFGH-IJ12"


def test_digit_only_codes_are_codes() -> None:
    assert PSN.normalize("123412341234") == "1234-1234-1234"


@st.composite
def disguised_codes(draw: st.DrawFn) -> tuple[str, str]:
    """A 12-character code, and the same code with random case and separators put in."""
    code = draw(st.text(alphabet=ALNUM, min_size=12, max_size=12))
    pieces = []
    for char in code:
        pieces.append(draw(st.text(alphabet=" -\t", max_size=3)))
        pieces.append(char.lower() if draw(st.booleans()) else char)
    pieces.append(draw(st.text(alphabet=" -\t", max_size=3)))
    return code, "".join(pieces)


@given(disguised_codes())
@example(("ABCDEFGHIJKL", "abcd efgh ijkl"))
@example(("ABCDEFGHIJKL", "-A-b-C-d-E-f-G-h-I-j-K-l-"))
def test_case_spaces_and_hyphens_never_change_the_code(pair: tuple[str, str]) -> None:
    code, disguised = pair
    canonical = PSN.normalize(disguised)
    assert canonical == f"{code[:4]}-{code[4:8]}-{code[8:]}"
    assert PSN.normalize(canonical) == canonical


@given(st.text(max_size=30))
def test_whatever_is_accepted_comes_out_canonical(raw: str) -> None:
    try:
        canonical = PSN.normalize(raw)
    except MalformedCodeError:
        return
    assert CANONICAL.fullmatch(canonical)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "ABCD-EFGH-IJK",  # 11 characters
        "ABCD-EFGH-IJKLM",  # 13 characters
        "ABCDEFGHIJK",
        "ABCDEFGHIJKLM",
        "ABCD.EFGH.IJKL",
        "ABCD_EFGH_IJKL",
        "ABCD/EFGH/IJKL",
        "ABCD-EFGH-IJK!",
        "ABCD,EFGH,IJKL",
        "ABCD-EFGH-IJKÄ",  # non-ASCII letter
        "ÄBCD-EFGH-IJK",
        "ABCD-EFGH-IJK\u0661",  # ARABIC-INDIC DIGIT ONE
        "\uff21BCD-EFGH-IJKL",  # FULLWIDTH LATIN CAPITAL LETTER A
        "ABCD\u2013EFGH\u2013IJKL",  # en dashes are not hyphens
        "ABCD\u00a0EFGH\u00a0IJKL",  # only ASCII white space is ignored
    ],
)
def test_malformed_psn_codes_are_refused(raw: str) -> None:
    with pytest.raises(MalformedCodeError, match="12 letters and digits"):
        PSN.normalize(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "ABCD-EFGH-IJß",  # LATIN SMALL LETTER SHARP S: upper() is "SS"
        "\u0131BCD-EFGH-IJKL",  # LATIN SMALL LETTER DOTLESS I: upper() is "I"
        "\u017fBCD-EFGH-IJKL",  # LATIN SMALL LETTER LONG S: upper() is "S"
        "ABCD-EFGH-IJK\ufb01",  # LATIN SMALL LIGATURE FI (11 chars + 1 = 13 after upper)
        "ABCD-EFGH-IJ\ufb01",  # LATIN SMALL LIGATURE FI: upper() is "FI"
    ],
)
def test_non_ascii_letters_are_refused_even_when_their_upper_case_is_ascii(raw: str) -> None:
    with pytest.raises(MalformedCodeError):
        PSN.normalize(raw)


def test_mask_shows_only_the_last_four_characters() -> None:
    assert mask("ABCD-EFGH-IJ12") == "****-****-IJ12"
    assert mask("ABCDEFGHIJ12") == "****-****-IJ12"
    assert mask("IJ12") == "****-****-IJ12"


@given(st.text(alphabet=ALNUM, min_size=12, max_size=12))
def test_a_masked_code_reveals_nothing_but_its_last_four(code: str) -> None:
    canonical = PSN.normalize(code)
    masked = mask(canonical)
    assert masked == "****-****-" + code[-4:]
    assert code[:8] not in masked.replace("-", "")


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("SHORT1", "****-****-ORT1"),
        ("ABCD-EFGH-IJK!", "****-****-IJK!"),
        ("abcd efgh ijklm", "****-****-jklm"),
        ("ABCD", "****"),
        ("AB", "**"),
        ("", ""),
    ],
)
def test_malformed_lines_are_masked_too(raw: str, masked: str) -> None:
    assert mask_raw(raw) == masked


@given(st.text(max_size=40))
def test_masking_a_malformed_line_shows_at_most_its_last_four_characters(raw: str) -> None:
    compact = re.sub(r"[\s\-]+", "", raw)
    masked = mask_raw(raw)
    if len(compact) <= 4:
        assert masked == "*" * len(compact)
    else:
        assert masked == "****-****-" + compact[-4:]
