"""Applying to work on the platform from the phone, through the bindings: fetch the terms while
online, fill in, sign the declaration (the willingness signature) and capture the face offline,
send when the server answers; the device then keeps nothing personal."""

import asyncio
import time

import pytest

import flexwork_mobile as fm
from conftest import fixture

NAME = "王小明"
ID_NUMBER = "34052419800101001X"
CARD = "6228480402564890018"
PHONE = "13812345678"


def stroke(y, t0):
    return fm.Stroke(points=[
        fm.StrokePoint(x=i * 5.0, y=y, t_ms=t0 + i * 16, pressure=0.5) for i in range(20)
    ])


def draft(login, face_bytes):
    now = int(time.time() * 1000)
    return fm.ApplicationDraft(
        applicant=fm.Applicant(
            login=login, password=f"{login}-secret-12", name=NAME, id_number=ID_NUMBER,
            bank_card=CARD, phone=PHONE, trade="shop-front photography",
        ),
        not_manager_of_hiring_enterprise=True,
        not_civil_servant=True,
        benefits_notice_acknowledged=True,
        notice_accepted=True,
        strokes=[stroke(10.0, 0), stroke(30.0, 400)],
        signed_at_ms=now,
        face=fm.FaceCapture(image=face_bytes, captured_at_ms=now - 1_000),
    )


def test_an_application_signed_offline_is_sent_and_then_forgotten(server, tmp_path):
    phone = fm.Phone.open(str(tmp_path / "phone"))
    with pytest.raises(fm.MobileError.Invalid) as no_terms:
        phone.sign_application(server.url, draft("chen", b""))
    assert no_terms.value.code == "no_terms"

    terms = asyncio.run(phone.fetch_onboarding_terms(server.url))
    assert terms.declaration_text and terms.notice_version
    assert phone.onboarding_terms(server.url) == terms

    # Offline from here: a server that is not there.
    face = fixture("photos/portrait-orientation-6.jpg").read_bytes()
    signed = phone.sign_application(server.url, draft("chen", face))
    assert signed.state == fm.ApplicationState.QUEUED
    assert signed.holds_personal_data and signed.has_face
    assert signed.masked_name == "王**"
    assert signed.signed_text_sha256 == terms.declaration_sha256

    masked = fm.masked_applicant(draft("chen", b"").applicant)
    assert (masked.id_number, masked.bank_card, masked.phone) == (
        "340524********001X", "622848*********0018", "138****5678")
    assert "secret" not in repr(draft("chen", b"").applicant)
    assert ID_NUMBER not in repr(draft("chen", b"").applicant)

    [sent] = asyncio.run(phone.submit_applications())
    assert sent.id == signed.id
    assert sent.state == fm.ApplicationState.SUBMITTED
    assert sent.server_id and sent.review_deadline
    assert not sent.holds_personal_data
    assert phone.applications() == [sent]

    # The reviewer sees it, masked, with the signature over exactly the text shown.
    reviewer = server.sign_in("operator")
    queue = server.call("GET", "/onboarding/workers", reviewer)
    [listed] = [a for a in queue if a["id"] == sent.server_id]
    assert listed["login"] == "chen" and listed["name"] == "王**"
    assert listed["signature"]["signed_text_sha256"] == terms.declaration_sha256
    assert listed["signature"]["strokes"] == 2
    assert listed["face_image"]["size"] == len(face)


def test_an_application_waits_on_the_phone_while_the_server_is_unreachable(server, tmp_path):
    phone = fm.Phone.open(str(tmp_path / "phone"))
    asyncio.run(phone.fetch_onboarding_terms(server.url))
    queued = phone.sign_application(server.url, _without_face(draft("sun", b"")))
    server.stop()
    [tried] = phone.submit_applications_blocking()
    assert tried.id == queued.id
    assert tried.state == fm.ApplicationState.QUEUED and tried.holds_personal_data
    assert tried.error_code == "network" and tried.attempts == 1

    server.start()
    [sent] = phone.submit_applications_blocking()
    assert sent.state == fm.ApplicationState.SUBMITTED and not sent.holds_personal_data


def _without_face(application):
    application.face = None
    return application
