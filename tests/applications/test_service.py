"""Access applications (seed 003): every field's rule, hostile text, one open application per
address (also when two race), the status link, and the operator's decisions, each once."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from codeshelf.applications import service
from codeshelf.applications.fields import REGIONS, InvalidApplicationError
from codeshelf.applications.models import Application
from codeshelf.audit.models import AuditEvent
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.errors import InvalidInputError, http_status
from codeshelf.kit.vault import Vault
from codeshelf.members.models import Invitation
from codeshelf.members.service import invitations
from codeshelf.partners.models import Partner
from tests.fixtures.applications import file as file_one
from tests.fixtures.applications import form
from tests.fixtures.browser import add_member
from tests.fixtures.factories import Shop
from tests.fixtures.http import second_while_first_is_open

HOSTILE = ["\u202e", "\u202a", "\u2066", "\u2069", "\u200f", "\u061c", "\u200b", "\x00", "\x1b"]
OPERATOR = "operator:alice"


def count(db: Database, model: type[Any]) -> int:
    with db.read_session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def actions(db: Database, subject: str) -> list[tuple[str, str]]:
    with db.read_session() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.subject == subject).order_by(AuditEvent.id)
        )
        return [(event.action, event.actor) for event in events]


def refused(**changes: str) -> dict[str, str]:
    with pytest.raises(InvalidApplicationError) as caught:
        service.check(form(**changes))
    assert caught.value.slug == "validation-error" and http_status(caught.value) == 422
    assert caught.value.pointer == f"#/{next(iter(caught.value.problems))}"
    return caught.value.problems


# --- the fields ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("company", "", "enter the company name"),
        ("company", "   ", "enter the company name"),
        ("company", "x" * 201, "1 to 200 characters (it is 201)"),
        ("company", "Nordlicht\u202eHbmG", "U+202E"),  # displays reversed: "GmbH"
        ("company", "Nord\u2066licht", "U+2066"),
        ("company", "Nord\x00licht", "U+0000"),
        ("company", "Nordlicht\nGames", "U+000A"),
        ("company", "Nord\u200blicht", "U+200B"),
        ("contact_name", "", "enter your name"),
        ("contact_name", "Jana\x1b[31m", "U+001B"),
        ("email", "not-an-address", "is not an e-mail address"),
        ("email", "jana@nordlicht.example\u202e", "U+202E"),
        ("email", "jana@nordlicht.example\r\nBcc: x@y.example", "U+000D"),
        ("country", "", "choose the company's country"),
        ("country", "XX", "choose the company's country"),
        ("country", "EU", "choose the company's country"),
        ("country", "DEU", "choose the company's country"),
        ("website", "nordlicht.example", "https://example.com"),
        ("website", "ftp://nordlicht.example", "http or https"),
        ("website", "javascript:alert(1)", "http or https"),
        ("website", "https://jana:secret@nordlicht.example", "http or https"),
        ("website", "https://localhost", "http or https"),
        ("website", "https://nordlicht.example:99999", "http or https"),
        ("website", "https://[::1", "http or https"),
        ("website", "https://nordlicht.example/" + "a" * 200, "at most 200 characters"),
        ("buyer_type", "wholesaler", "choose a buyer type: reseller, marketplace"),
        ("buyer_type", "", "choose a buyer type"),
        ("payment_preference", "crypto", "choose a payment preference: bank_transfer, card"),
        ("integration", "fax", "choose a way of ordering: api, manual"),
        ("monthly_volume", "", "an amount such as 25000"),
        ("monthly_volume", "-5", "an amount such as 25000"),
        ("monthly_volume", "1e9", "an amount such as 25000"),
        ("monthly_volume", "NaN", "an amount such as 25000"),
        ("monthly_volume", "25.000,00", "an amount such as 25000"),
        ("monthly_volume", "0", "more than zero"),
        ("monthly_volume", "0.00", "more than zero"),
        ("monthly_volume", "10.555", "more decimal places than EUR allows"),
        ("monthly_volume", "1" + "0" * 20, "beyond the largest amount"),
        ("volume_currency", "XYZ", "choose the currency"),
        ("volume_currency", "", "choose the currency"),
        ("regions", "", "enter the regions"),
        ("regions", " , ;", "enter the regions"),
        ("regions", "UK", "use GB for the United Kingdom"),
        ("regions", "US, Mars", "'MARS' is not a region code"),
        ("regions", "US\u202e, DE", "U+202E"),
        ("regions", ", ".join(sorted(REGIONS)[:31]), "at most 30 regions"),
        ("use_case", "", "enter the use case"),
        ("use_case", "We resell PSN.", "20 to 5,000 characters (it is 14)"),
        ("use_case", "x" * 5001, "20 to 5,000 characters (it is 5,001)"),
        ("use_case", "We resell PSN cards \u202eto our customers", "U+202E"),
        ("use_case", "We resell PSN cards\x07 to our customers", "U+0007"),
    ],
)
def test_each_rule_refuses_its_field_with_a_pointer(name: str, value: str, says: str) -> None:
    problems = refused(**{name: value})
    assert list(problems) == [name]
    assert says in problems[name], problems[name]


def test_every_problem_is_reported_at_once() -> None:
    problems = refused(company="", email="nope", regions="XX", monthly_volume="lots")
    assert list(problems) == ["company", "email", "monthly_volume", "regions"]
    with pytest.raises(InvalidApplicationError) as caught:
        service.check(form(company="", email="nope"))
    assert caught.value.detail == "enter the company name; 'nope' is not an e-mail address"


def test_a_bad_currency_still_checks_the_amount_on_its_own() -> None:
    assert list(refused(volume_currency="ZZZ", monthly_volume="12")) == ["volume_currency"]
    assert list(refused(volume_currency="ZZZ", monthly_volume="x")) == [
        "volume_currency",
        "monthly_volume",
    ]


def test_accepted_values_are_normalised() -> None:
    checked = service.check(
        form(
            company="  Nordlicht Games GmbH ",
            email=" Jana@Nordlicht.EXAMPLE ",
            country="de",
            website="",
            monthly_volume="1,250,000.50",
            volume_currency="eur",
            regions="de at,ch;DE\neu",
            use_case="Line one of our use case.\r\nLine two\twith a tab.",
        )
    )
    assert checked.company == "Nordlicht Games GmbH" and checked.email == "jana@nordlicht.example"
    assert checked.country == "DE" and checked.website is None
    assert (checked.monthly_volume.minor, checked.monthly_volume.currency) == (125000050, "EUR")
    assert checked.regions == ("DE", "AT", "CH", "EU")
    assert checked.use_case == "Line one of our use case.\nLine two\twith a tab."
    assert service.check(form(company="Ünïcødé 株式会社 & Co.")).company == "Ünïcødé 株式会社 & Co."


printable = st.text(
    st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs")),
    min_size=1,
    max_size=199,
)


@given(printable, st.sampled_from([*HOSTILE, "\u2028", "\x7f", "\ufeff"]), st.data())
def test_a_hidden_character_anywhere_in_any_text_is_refused(
    text: str, hidden: str, data: st.DataObject
) -> None:
    at = data.draw(st.integers(0, len(text)))
    sly = text[:at] + hidden + text[at:]
    assert service.check(form(company=text)).company == text
    for name in ("company", "contact_name", "use_case"):
        value = sly if name != "use_case" else sly + " and enough words for a use case"
        assert name in refused(**{name: value})


# --- filing -------------------------------------------------------------------------------------


def test_a_filed_application_is_submitted_and_its_link_stored_only_as_a_hash(
    db: Database,
) -> None:
    filed = file_one(db)
    assert filed.path == f"/apply/status/{filed.token}" and len(filed.token) == 43
    with db.read_session() as session:
        stored = session.scalars(select(Application)).one()
        row = {c.key: getattr(stored, c.key) for c in Application.__table__.columns}
        view = service.status_of(session, filed.token)
    assert stored.token_hash == hashlib.sha256(filed.token.encode()).hexdigest()
    assert filed.token not in repr(row)
    assert row["status"] == "submitted" and row["regions"] == "DE,AT,CH"
    assert (row["monthly_volume_minor"], row["volume_currency"]) == (2500000, "EUR")
    assert (view.company, view.status, view.status_text, view.message) == (
        "Nordlicht Games GmbH",
        "submitted",
        "Received, waiting for review",
        None,
    )
    assert actions(db, stored.public_id) == [("application.file", f"applicant:{stored.public_id}")]


def test_a_refused_application_writes_nothing(db: Database) -> None:
    with pytest.raises(InvalidApplicationError), db.session() as session:
        service.file_application(session, form(company="\u202e"), utcnow())
    assert count(db, Application) == 0 and count(db, AuditEvent) == 0


def test_an_open_application_blocks_another_from_the_same_address(db: Database) -> None:
    first = file_one(db)
    with pytest.raises(service.ApplicationOpenError) as caught:
        file_one(db, email="JANA@nordlicht.example", company="Another name")
    assert http_status(caught.value) == 409 and caught.value.pointer == "#/email"
    assert "status link you were given when you applied" in caught.value.detail
    with db.session() as session:
        service.review(session, first.application.public_id, OPERATOR, utcnow())
    with pytest.raises(service.ApplicationOpenError):
        file_one(db)
    file_one(db, email="other@nordlicht.example")  # another address of the same company
    with db.session() as session:
        service.decline(session, first.application.public_id, OPERATOR, utcnow(), "Not now.")
    again = file_one(db)  # decided: the address may apply again, with a link of its own
    assert again.token != first.token and count(db, Application) == 3


@pytest.mark.live  # two transactions with real commits
def test_two_applications_racing_from_one_address_make_one(db: Database) -> None:
    def first(session: Any) -> None:
        service.file_application(session, form(), utcnow())

    def second() -> str:
        try:
            file_one(db, company="Second try")
        except service.ApplicationOpenError as exc:
            return exc.slug
        return "filed"

    assert second_while_first_is_open(db, first, second) == "application-already-open"
    with db.read_session() as session:
        assert session.scalars(select(Application.company)).all() == ["Nordlicht Games GmbH"]


@pytest.mark.parametrize(
    "token",
    ["", "x", "A" * 43, "A" * 44, "../../etc/passwd", "a" * 64, "%00" * 15, "\u202e" * 43],
)
def test_an_unknown_status_link_is_not_found(db: Database, token: str) -> None:
    filed = file_one(db)
    with db.read_session() as session:
        with pytest.raises(service.ApplicationNotFoundError):
            service.status_of(session, token)
        with pytest.raises(service.ApplicationNotFoundError):  # its stored hash is no link
            service.status_of(session, filed.application.token_hash)
        altered = filed.token[:-1] + ("A" if filed.token[-1] != "A" else "B")
        with pytest.raises(service.ApplicationNotFoundError):
            service.status_of(session, altered)


# --- the operator's decisions -------------------------------------------------------------------


def test_decisions_follow_the_allowed_transitions_once_each(db: Database) -> None:
    public_id = file_one(db).application.public_id
    now = utcnow()
    with db.session() as session:
        assert service.review(session, public_id, OPERATOR, now).status == "under_review"
    for step in (
        lambda s: service.review(s, public_id, "operator:bob", now),
        lambda s: service.decline(s, public_id, "operator:bob", now, "   "),
    ):
        with pytest.raises((service.ApplicationStateError, InvalidInputError)), db.session() as s:
            step(s)
    with db.session() as session:
        said = "Volume too low.\nSorry"
        declined = service.decline(session, public_id, "operator:bob", now, said)
        assert (declined.status, declined.reviewed_by) == ("declined", "operator:bob")
    for step in (
        lambda s: service.review(s, public_id, OPERATOR, now),
        lambda s: service.approve(s, public_id, OPERATOR, now),
        lambda s: service.decline(s, public_id, OPERATOR, now, "again"),
    ):
        with pytest.raises(service.ApplicationStateError) as caught, db.session() as session:
            step(session)
        assert http_status(caught.value) == 409 and "is declined" in caught.value.detail
    assert actions(db, public_id)[1:] == [
        ("application.review", OPERATOR),
        ("application.decline", "operator:bob"),
    ]
    assert count(db, Partner) == 0


def test_an_operator_message_refuses_hidden_characters(db: Database) -> None:
    public_id = file_one(db).application.public_id
    for bad in ("", "Welcome \u202eaboard", "x" * 2001):
        with pytest.raises(InvalidInputError) as caught, db.session() as session:
            service.decline(session, public_id, OPERATOR, utcnow(), bad)
        assert caught.value.pointer == "#/message"
    with pytest.raises(InvalidInputError), db.session() as session:
        service.approve(session, public_id, OPERATOR, utcnow(), "\x1b[2J")
    assert count(db, Partner) == 0


def test_approval_opens_the_partner_and_invites_the_owner(
    db: Database, client: httpx.Client
) -> None:
    filed = file_one(db, email="Jana@Nordlicht.example")
    public_id = filed.application.public_id
    with db.session() as session:
        approved = service.approve(session, public_id, OPERATOR, utcnow(), "Welcome aboard.")
        partner = approved.opened.partner
        issued = approved.opened.invitation
        assert approved.application.partner_id == partner.id
        assert service.partner_public_id(session, approved.application) == partner.public_id
        view = service.status_of(session, filed.token)
    assert partner.name == "Nordlicht Games GmbH"
    assert (issued.invitation.email, issued.invitation.role) == ("jana@nordlicht.example", "owner")
    assert issued.path.startswith(invitations.INVITE_PATH)
    assert (view.status, view.status_text, view.message) == (
        "approved",
        "Approved",
        "Welcome aboard.",
    )
    page = client.get(issued.path)
    assert page.status_code == 200 and "jana@nordlicht.example" in page.text
    with db.read_session() as session:
        trail = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        assert [(e.action, e.actor, e.partner_public_id) for e in trail[1:]] == [
            ("partner.create", OPERATOR, partner.public_id),
            ("member.invite", OPERATOR, partner.public_id),
            ("application.approve", OPERATOR, partner.public_id),
        ]
        assert trail[-1].details == {"status": "approved", "message": "Welcome aboard."}


def test_approval_is_refused_whole_when_the_address_already_has_an_account(
    db: Database, vault: Vault, shop: Shop
) -> None:
    add_member(db, vault, shop.a.id, "buyer", "jana@nordlicht.example")
    public_id = file_one(db).application.public_id
    partners_before = count(db, Partner)
    with pytest.raises(invitations.MemberExistsError), db.session() as session:
        service.approve(session, public_id, OPERATOR, utcnow())
    with db.read_session() as session:
        assert service.get(session, public_id).status == "submitted"
    assert count(db, Partner) == partners_before
    assert count(db, Invitation) == 1  # the member's own, accepted


@pytest.mark.live  # two transactions with real commits
def test_two_racing_approvals_open_one_partner(db: Database) -> None:
    public_id = file_one(db).application.public_id

    def first(session: Any) -> None:
        service.approve(session, public_id, "operator:alice", utcnow())

    def second() -> str:
        try:
            with db.session() as session:
                service.approve(session, public_id, "operator:bob", utcnow())
        except service.ApplicationStateError as exc:
            return exc.slug
        return "approved twice"

    assert second_while_first_is_open(db, first, second) == "application-state-conflict"
    assert count(db, Partner) == 1 and count(db, Invitation) == 1
    assert [a for a in actions(db, public_id) if a[0] == "application.approve"] == [
        ("application.approve", "operator:alice")
    ]


def test_the_queue_lists_open_applications_oldest_first(db: Database) -> None:
    ids = [file_one(db, email=f"n{n}@nordlicht.example").application.public_id for n in range(4)]
    with db.session() as session:
        service.review(session, ids[1], OPERATOR, utcnow())
        service.decline(session, ids[2], OPERATOR, utcnow(), "No.")
        service.approve(session, ids[3], OPERATOR, utcnow())
    with db.read_session() as session:
        assert [a.public_id for a in service.queue(session)] == ids[:2]
        assert [a.public_id for a in service.queue(session, "under_review")] == [ids[1]]
        assert [a.public_id for a in service.queue(session, "declined")] == [ids[2]]
        assert [a.public_id for a in service.queue(session, "approved")] == [ids[3]]
        assert [a.public_id for a in service.queue(session, None, 1)] == ids[:1]
        with pytest.raises(InvalidInputError) as caught:
            service.queue(session, "open")
        assert caught.value.pointer == "query:status"
        for unknown in ("apl_00000000000000000000", "nonsense", "ptr_" + ids[0][4:]):
            with pytest.raises(service.ApplicationNotFoundError):
                service.get(session, unknown)
