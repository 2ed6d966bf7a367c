"""A worker's app recording evidence with no server, then killed: run by test_worker_day as a
child process, which prints the recorded item ids as one JSON line once every call has returned
and then waits to be killed with SIGKILL (no chance to flush or close anything).

Usage: python record_offline.py STORE ORDER_ID FIXTURES_DIR
"""

import asyncio
import json
import os
import sys
import time

sys.path.insert(0, os.environ["FLEXWORK_BINDINGS_DIR"])

import flexwork_mobile as fm  # noqa: E402

SITE_LAT, SITE_LON = 43.467448, 11.885127
CAPTURE_MS = 1_224_772_027_000  # 2008-10-23T14:27:07Z


def stroke(y, t0):
    return fm.Stroke(points=[
        fm.StrokePoint(x=i * 5.0, y=y, t_ms=t0 + i * 16, pressure=0.5) for i in range(20)
    ])


async def record(store, order_id, fixtures):
    phone = fm.Phone.open(store)
    on_site = fm.LocationFix(
        lat=SITE_LAT, lon=SITE_LON, accuracy_m=8.0, at_ms=CAPTURE_MS, mock=False
    )
    # 20 km north of the site.
    far_away = fm.LocationFix(
        lat=SITE_LAT + 0.18, lon=SITE_LON, accuracy_m=8.0, at_ms=CAPTURE_MS + 60_000, mock=False
    )
    shop = await phone.record_photo_file(
        order_id, str(fixtures / "photos/DSCN0010.jpg"), on_site, CAPTURE_MS
    )
    with open(fixtures / "photos/DSCN0012.jpg", "rb") as f:
        bytes_ = f.read()
    street = await phone.record_photo(order_id, bytes_, None, far_away, CAPTURE_MS + 60_000)
    walk = phone.append_track_points(order_id, [
        fm.TrackPoint(
            lat=SITE_LAT + i * 0.0001, lon=SITE_LON, at_ms=CAPTURE_MS + i * 10_000,
            accuracy_m=5.0, elevation_m=None,
        )
        for i in range(10)
    ])
    gpx = phone.import_gpx_file(order_id, str(fixtures / "tracks/gpsies-example.gpx"))
    signature = phone.add_signature(
        order_id, [stroke(10.0, 0), stroke(30.0, 400)], CAPTURE_MS + 120_000
    )
    note = phone.add_note(order_id, "Shop front photographed from the street", CAPTURE_MS + 130_000)
    submission = phone.submit(order_id, CAPTURE_MS + 140_000)
    return {
        "shop": shop.item_id, "shop_sha256": shop.sha256, "shop_size": shop.size,
        "street": street.item_id, "street_lat": street.fix.lat,
        "walk": walk, "gpx": gpx.item_id, "gpx_points": gpx.points,
        "signature": signature, "note": note, "submission": submission,
    }


def main():
    store, order_id, fixtures = sys.argv[1], sys.argv[2], sys.argv[3]
    from pathlib import Path

    ids = asyncio.run(record(store, order_id, Path(fixtures)))
    print(json.dumps(ids), flush=True)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main()
