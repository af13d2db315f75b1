"""A claimed code is remedied once and taken out of sale; a code is in one open claim at most."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from codeshelf.claims.models import ClaimCode, Remedy
from codeshelf.stock.models import Code, CodeState


def remedied_codes(session: Session) -> list[str]:
    not_voided = session.scalar(
        select(func.count())
        .select_from(Remedy)
        .join(Code, Code.id == Remedy.code_id)
        .where(Code.state != CodeState.VOIDED)
    )
    return [f"{not_voided} remedied code(s) are not voided"] if not_voided else []


def open_claims(session: Session) -> list[str]:
    doubly_open = session.scalar(
        select(func.count()).select_from(
            select(ClaimCode.code_id)
            .where(ClaimCode.open)
            .group_by(ClaimCode.code_id)
            .having(func.count() > 1)
            .subquery()
        )
    )
    return [f"{doubly_open} code(s) are in more than one open claim"] if doubly_open else []
