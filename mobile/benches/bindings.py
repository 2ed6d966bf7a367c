"""The calls of mobile/benches/bindings.rs made through the generated Python bindings, on the
store with 1,000 orders that the Rust bench left; prints both side by side.

Run by scripts/bindings-bench after the Rust bench:
  python bindings.py BENCH_DIR FIXTURES_DIR
with FLEXWORK_BINDINGS_DIR naming the generated module (built in release).
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.environ["FLEXWORK_BINDINGS_DIR"])

import flexwork_mobile as fm  # noqa: E402

RUNS = 200


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def median_us(runs, f):
    f()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        f()
        times.append((time.perf_counter() - start) * 1e6)
    times.sort()
    return times[runs // 2]


def main():
    bench, fixtures = Path(sys.argv[1]), Path(sys.argv[2])
    store = str(bench / "store")
    rust = json.loads((bench / "rust.json").read_text())
    photo = (fixtures / "photos/DSCN0010.jpg").read_bytes()

    before = rss_kib()
    phone = fm.Phone.open(store)
    orders = phone.orders()
    assert len(orders) == rust["orders"]
    rss_with_orders = rss_kib() - before
    del orders, phone

    open_us = median_us(RUNS, lambda: fm.Phone.open(store).device_id())

    phone = fm.Phone.open(store)
    at = [1_224_772_027_000 + 10_000_000]

    def record():
        at[0] += 1_000
        fix = fm.LocationFix(lat=43.467448, lon=11.885127, accuracy_m=8.0, at_ms=at[0],
                             mock=False)
        phone.record_photo_blocking("order-0000", photo, "image/jpeg", fix, at[0])

    record_us = median_us(RUNS, record)

    def row(what, direct, bound):
        extra = (bound - direct) / direct * 100 if direct else 0.0
        return f"  {what:<34} {direct:>10.1} {bound:>10.1} {extra:>+8.1f} %"

    print(f"through the Python bindings vs direct Rust, median of {RUNS} (µs):")
    print(f"  {'':<34} {'Rust':>10} {'Python':>10} {'binding':>10}")
    print(row(f"open a store with {rust['orders']} orders", rust["open_store_us"], open_us))
    print(row(f"record one photo ({len(photo)} B)", rust["record_photo_us"], record_us))
    print(f"  memory with {rust['orders']} orders listed: Rust {rust['rss_with_orders_kib']} KiB,"
          f" Python {rss_with_orders} KiB (the Python objects of the 1,000 orders included)")
    (bench / "python.json").write_text(json.dumps({
        "open_store_us": open_us, "record_photo_us": record_us,
        "rss_with_orders_kib": rss_with_orders,
    }))


if __name__ == "__main__":
    main()
