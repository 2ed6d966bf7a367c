"""A whole worker's day through the generated Python bindings, against a real server on
loopback: log in and bind the phone, receive the order, record evidence while the server is
down in a process that is then killed, reopen, sync with progress, receive findings and the
operator's comment per item, fix the flagged item, sync again."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import flexwork_mobile as fm
from conftest import BINDINGS, CAPTURE_MS, FIXTURES, SITE_LAT, SITE_LON, fixture

HERE = Path(__file__).resolve().parent


class Progress(fm.SyncProgress):
    """Collects what the sync reports, as an app's progress bar would."""

    def __init__(self):
        self.steps = []

    def on_progress(self, step):
        self.steps.append(step)


def record_then_get_killed(store, order_id):
    child = subprocess.Popen(
        [sys.executable, str(HERE / "record_offline.py"), str(store), order_id, str(FIXTURES)],
        env=dict(os.environ, FLEXWORK_BINDINGS_DIR=str(BINDINGS)),
        stdout=subprocess.PIPE,
        text=True,
    )
    line = child.stdout.readline()
    assert line, "the recording process ended without reporting"
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL
    return json.loads(line)


def sync_until(phone, done, what, timeout=60):
    """Syncs until `done()` holds: the server marks an order verified a moment before it writes
    the review into the order's document, so one sync right after may not carry it yet."""
    deadline = time.monotonic() + timeout
    while True:
        asyncio.run(phone.sync(None))
        if done():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"no sync brought {what} within {timeout} s")
        time.sleep(0.2)


def by_id(items):
    return {item.item_id: item for item in items}


def test_a_worker_day_offline_killed_synced_reviewed_and_fixed(platform, tmp_path):
    store = tmp_path / "phone"
    order_id = platform.order_id

    # Morning, online: log in once, bind the phone, receive the order.
    phone = fm.Phone.open(str(store))
    assert phone.session() is None
    session = asyncio.run(phone.login(platform.server.url, "wang", platform.worker_password, None))
    assert session.role == "worker"
    assert phone.session() == session
    first = asyncio.run(phone.sync(None))
    assert first.new_orders == 1 and first.converged
    [order] = phone.orders()
    assert (order.order_id, order.fee_fen, order.min_photos) == (order_id, 300000, 1)
    assert order.requires_signature and not order.unsynced
    assert (order.site_lat, order.site_lon) == (SITE_LAT, SITE_LON)
    del phone

    # The server goes away; the app records everything, then is killed mid-day.
    platform.server.stop()
    ids = record_then_get_killed(store, order_id)
    assert ids["street_lat"] == SITE_LAT + 0.18
    assert ids["gpx_points"] == 41

    # Reopened: every item is there, queued; the photo bytes are all on the device.
    phone = fm.Phone.open(str(store))
    items = by_id(phone.items(order_id))
    expected = ["shop", "street", "walk", "gpx", "signature", "note", "submission"]
    assert set(items) == {ids[name] for name in expected}
    assert all(item.state == fm.UploadState.QUEUED for item in items.values())
    shop = items[ids["shop"]]
    assert (shop.kind, shop.sha256, shop.size) == (fm.ItemKind.PHOTO, ids["shop_sha256"],
                                                   ids["shop_size"])
    assert shop.uploaded_bytes == 0
    assert items[ids["walk"]].points == 10
    assert phone.order(order_id).unsynced

    # Still no server: sync fails as Offline, and nothing is lost.
    try:
        asyncio.run(phone.sync(None))
        raise AssertionError("sync with the server down must fail")
    except fm.MobileError.Offline as e:
        assert e.code == "network"
    assert len(phone.items(order_id)) == len(expected)

    # The server is back: sync, with progress for the documents and for each photo.
    platform.server.start()
    phone.set_upload_chunk_size(32 * 1024)
    progress = Progress()
    report = asyncio.run(phone.sync(progress))
    assert report.converged and report.problems == []
    assert report.photos_uploaded == 2
    assert report.bytes_uploaded == shop.size + items[ids["street"]].size
    stages = {step.stage for step in progress.steps}
    assert stages == {fm.SyncStage.DOCUMENTS, fm.SyncStage.MEDIA}
    shop_steps = [s for s in progress.steps if s.item_id == ids["shop"]]
    assert len(shop_steps) > 2, "a 160 KB photo in 32 KiB chunks reports each chunk"
    assert shop_steps[-1].done == shop_steps[-1].total == shop.size
    assert [s.done for s in shop_steps] == sorted(s.done for s in shop_steps)
    items = by_id(phone.items(order_id))
    assert all(item.state == fm.UploadState.SYNCED for item in items.values())
    assert items[ids["shop"]].uploaded_bytes == shop.size
    assert not phone.order(order_id).unsynced

    # The server verifies; the next sync brings its findings, attached to the items.
    platform.wait_for_verdict()
    sync_until(phone, lambda: phone.review(order_id) is not None, "the review")
    review = phone.review(order_id)
    # The street photo's fix was 20 km away: a person must look.
    assert review is not None and review.verdict == "needs_review"
    street = phone.item_feedback(order_id, ids["street"])
    street_codes = {f.code: f.severity for f in street.findings}
    assert street_codes["photo_outside_site"] == "review"
    assert "20.0 km" in next(f.message for f in street.findings if f.code == "photo_outside_site")
    assert all(f.item_id == ids["street"] for f in street.findings)
    assert street.operator_comments == []
    shop_codes = {f.code for f in phone.item_feedback(order_id, ids["shop"]).findings}
    assert "photo_outside_site" not in shop_codes

    # An operator sends the evidence back with a comment on the street photo; it reaches the
    # phone on that item, and the reason with the review.
    reason = "one photo is not of the shop"
    comment = "taken 20 km away: photograph the shop front again"
    platform.server.call("POST", f"/orders/{order_id}/review", platform.operator, {
        "decision": "has_issues", "reason": reason,
        "items": [{"item": ids["street"], "comment": comment}],
    })
    sync_until(phone, lambda: phone.item_feedback(order_id, ids["street"]).operator_comments,
               "the operator's comment")
    assert phone.item_feedback(order_id, ids["street"]).operator_comments == [comment]
    assert phone.item_feedback(order_id, ids["shop"]).operator_comments == []
    assert phone.review(order_id).comment == reason

    # The worker fixes it: a new photo on site, synced; verification runs again.
    on_site = fm.LocationFix(lat=SITE_LAT, lon=SITE_LON, accuracy_m=6.0,
                             at_ms=CAPTURE_MS + 600_000, mock=False)
    retaken = asyncio.run(phone.record_photo_file(
        order_id, str(fixture("photos/DSCN0010.jpg")), on_site, CAPTURE_MS + 600_000))
    assert phone.item_feedback(order_id, retaken.item_id).item.state == fm.UploadState.QUEUED
    again = asyncio.run(phone.sync(None))
    assert again.converged and again.problems == []
    assert phone.item_feedback(order_id, retaken.item_id).item.state == fm.UploadState.SYNCED

    platform.wait_for_verdict()
    sync_until(phone, lambda: phone.item_feedback(order_id, retaken.item_id).findings,
               "a review covering the new photo")
    fixed = phone.item_feedback(order_id, retaken.item_id)
    # Verification saw the new photo (the camera's clock in DSCN0010.jpg is a day off, which
    # it reports for every copy), and found it on site.
    assert "photo_exif_time_mismatch" in {f.code for f in fixed.findings}
    assert "photo_outside_site" not in {f.code for f in fixed.findings}
    assert fixed.operator_comments == []
    after = phone.review(order_id)
    assert after.reviewed_at_ms > review.reviewed_at_ms
    # The flagged photo stays flagged (devices only append): the new one stands beside it.
    assert "photo_outside_site" in {f.code for f in after.findings if f.item_id == ids["street"]}
    assert all(item.state == fm.UploadState.SYNCED for item in phone.items(order_id))


def test_the_mock_flag_of_a_fix_reaches_the_server(platform, tmp_path):
    phone = fm.Phone.open(str(tmp_path / "phone"))
    phone.login_blocking(platform.server.url, "wang", platform.worker_password, None)
    phone.sync_blocking(None)
    order_id = platform.order_id
    mocked = fm.LocationFix(lat=SITE_LAT, lon=SITE_LON, accuracy_m=5.0, at_ms=CAPTURE_MS,
                            mock=True)
    photo = phone.record_photo_file_blocking(
        order_id, str(fixture("photos/DSCN0010.jpg")), mocked, CAPTURE_MS)
    assert photo.fix.mock is True
    phone.add_signature(order_id, [fm.Stroke(points=[
        fm.StrokePoint(x=i * 5.0, y=10.0, t_ms=i * 16, pressure=0.5) for i in range(20)])],
        CAPTURE_MS + 60_000)
    phone.submit(order_id, CAPTURE_MS + 120_000)
    phone.sync_blocking(None)

    platform.wait_for_verdict()
    sync_until(phone, lambda: phone.review(order_id) is not None, "the review")
    feedback = phone.item_feedback(order_id, photo.item_id)
    assert {f.code: f.severity for f in feedback.findings}["photo_mock_location"] == "reject"
    assert phone.review(order_id).verdict == "rejected"
