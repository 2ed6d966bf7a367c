"""Errors cross the boundary typed, with stable codes and sentences; a panic in Rust becomes an
error and the phone carries on; two threads calling at once are safe; async calls leave the
caller's thread free."""

import asyncio
import threading

import pytest

import flexwork_mobile as fm
from conftest import free_port


class Raising(fm.SyncProgress):
    """A progress callback with a bug: Rust panics on the failed callback, and the panic must
    come back as an error, not abort the app."""

    def on_progress(self, step):
        raise RuntimeError("bug in the app's progress bar")


def logged_in(platform, store):
    phone = fm.Phone.open(str(store))
    phone.login_blocking(platform.server.url, "wang", platform.worker_password, "test phone")
    phone.sync_blocking(None)
    return phone


def test_wrong_password_server_down_unknown_order_and_no_login_are_typed(server, tmp_path):
    phone = fm.Phone.open(str(tmp_path / "phone"))

    with pytest.raises(fm.MobileError.Refused) as refused:
        phone.login_blocking(server.url, "zhao", "not-the-password", None)
    assert (refused.value.status, refused.value.code) == (401, "invalid_credentials")
    assert refused.value.reason
    assert phone.session() is None

    with pytest.raises(fm.MobileError.Offline) as offline:
        asyncio.run(phone.login(f"http://127.0.0.1:{free_port()}", "zhao", "zhao-secret-12", None))
    assert offline.value.code == "network"
    assert "cannot be reached" in offline.value.reason

    with pytest.raises(fm.MobileError.NotLoggedIn) as not_logged_in:
        phone.sync_blocking(None)
    assert not_logged_in.value.code == "not_logged_in"

    with pytest.raises(fm.MobileError.Invalid) as unknown:
        phone.add_note("no-such-order", "hello", 1)
    assert unknown.value.code == "unknown_order"
    assert "no-such-order" in unknown.value.reason

    with pytest.raises(fm.MobileError.Invalid) as unreadable:
        phone.import_gpx_file("no-such-order", str(tmp_path / "missing.gpx"))
    assert unreadable.value.code == "file_unreadable"

    with pytest.raises(fm.MobileError.Invalid) as not_a_photo:
        phone.record_photo_blocking("no-such-order", b"plain text", None, None, 1)
    assert not_a_photo.value.code == "unsupported_media_type"

    session = phone.login_blocking(server.url, "zhao", "zhao-secret-12", None)
    assert session.role == "worker"


def test_a_panic_in_rust_becomes_an_internal_error_and_the_phone_goes_on(platform, tmp_path):
    phone = logged_in(platform, tmp_path / "phone")
    order_id = platform.order_id
    phone.add_note(order_id, "before the bug", 1)

    with pytest.raises(fm.MobileError.Internal) as internal:
        phone.sync_blocking(Raising())
    assert internal.value.code == "internal"
    assert "Callback interface failure" in internal.value.reason

    # The store was reopened behind the scenes: what was recorded is there, and works on.
    phone.add_note(order_id, "after the bug", 2)
    assert [i.kind for i in phone.items(order_id)] == [fm.ItemKind.NOTE, fm.ItemKind.NOTE]
    report = phone.sync_blocking(None)
    assert report.converged and report.problems == []
    assert all(i.state == fm.UploadState.SYNCED for i in phone.items(order_id))


def test_two_threads_recording_at_once_each_get_every_item(platform, tmp_path):
    phone = logged_in(platform, tmp_path / "phone")
    order_id = platform.order_id
    errors = []

    def record(name):
        try:
            for i in range(40):
                phone.add_note(order_id, f"{name} {i}", i)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=record, args=(n,)) for n in ("left", "right")]
    for t in threads:
        t.start()
    # A sync on the main thread at the same time, on the same phone.
    report = phone.sync_blocking(None)
    for t in threads:
        t.join()

    assert errors == []
    assert report.problems == []
    notes = phone.items(order_id)
    assert len(notes) == 80
    assert len({n.item_id for n in notes}) == 80
    phone.sync_blocking(None)
    assert all(n.state == fm.UploadState.SYNCED for n in phone.items(order_id))


def test_async_calls_leave_the_event_loop_free(platform, tmp_path):
    phone = logged_in(platform, tmp_path / "phone")
    ticks = []

    async def ticker(stop):
        while not stop.is_set():
            ticks.append(1)
            await asyncio.sleep(0.001)

    async def main():
        stop = asyncio.Event()
        task = asyncio.create_task(ticker(stop))
        for i in range(3):
            phone.add_note(platform.order_id, f"note {i}", i)
        report = await phone.sync(None)
        stop.set()
        await task
        return report

    report = asyncio.run(main())
    assert report.items_synced == 3
    # The loop kept running while the sync went on elsewhere (a call blocking the loop would
    # have finished before the ticker's first turn).
    assert ticks
