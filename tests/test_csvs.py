"""CSV cells people typed cannot become spreadsheet formulas; system values are untouched."""

from __future__ import annotations

import csv
import io

from hypothesis import given
from hypothesis import strategies as st

from codeshelf.kit import csvs


@given(st.text(max_size=30), st.integers(-(10**9), 10**9))
def test_typed_text_never_starts_a_formula_and_amounts_keep_their_sign(
    typed: str, minor: int
) -> None:
    amount = f"{minor / 100:.2f}"
    text = csvs.table(["amount", "note"], [[amount, typed]], typed={"note"})
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert row["amount"] == amount
    assert row["note"][:1] not in csvs.FORMULA_STARTS
    assert row["note"] in (typed, "'" + typed)
