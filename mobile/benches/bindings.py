"""The calls of mobile/benches/bindings.rs made through the generated Python bindings, on the
store with 1,000 orders that the Rust bench left.

Run by scripts/bindings-bench after each run of the Rust bench:
  python bindings.py BENCH_DIR FIXTURES_DIR   one round: appends both sides' figures to
                                              BENCH_DIR/rounds.jsonl
  python bindings.py --summary BENCH_DIR      the table: each figure's best round per side
with FLEXWORK_BINDINGS_DIR naming the generated module (built in release). The machine is
shared, so the rounds alternate Rust and Python and the best of each is compared.
"""

import json
import os
import sys
import time
from pathlib import Path

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


def one_round(bench, fixtures):
    sys.path.insert(0, os.environ["FLEXWORK_BINDINGS_DIR"])
    import flexwork_mobile as fm

    store = str(bench / "store")
    rust = json.loads((bench / "rust.json").read_text())
    photo = (fixtures / "photos/DSCN0010.jpg").read_bytes()

    before = rss_kib()
    phone = fm.Phone.open(store)
    rss_open = rss_kib() - before
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
        # An order of its own: every side records from an empty document.
        phone.record_photo_blocking("order-0003", photo, "image/jpeg", fix, at[0])

    record_us = median_us(RUNS, record)
    python = {"open_store_us": open_us, "record_photo_us": record_us,
              "rss_open_kib": rss_open, "rss_with_orders_kib": rss_with_orders}
    with open(bench / "rounds.jsonl", "a") as f:
        f.write(json.dumps({"rust": rust, "python": python}) + "\n")


def summary(bench):
    rounds = [json.loads(line) for line in (bench / "rounds.jsonl").read_text().splitlines()]
    rust0 = rounds[0]["rust"]

    def best(side, key):
        return min(r[side][key] for r in rounds)

    print(f"through the Python bindings vs direct Rust (client-core): best of {len(rounds)} "
          f"rounds, each the median of {RUNS} calls (µs)")
    print(f"  {'':<36} {'Rust':>9} {'Python':>9} {'binding':>9}")
    for what, key in [(f"open a store with {rust0['orders']} orders", "open_store_us"),
                      (f"record one photo ({rust0['photo_bytes']} B)", "record_photo_us")]:
        direct, bound = best("rust", key), best("python", key)
        print(f"  {what:<36} {direct:>9.1f} {bound:>9.1f} {(bound - direct) / direct:>+9.1%}")
    print(f"  Rust side of the interface (Phone):  open {best('rust', 'phone_open_store_us'):.1f}"
          f", record {best('rust', 'phone_record_photo_us'):.1f}")
    print("memory (KiB above the process before opening; Python: library already loaded):")
    for key, what in [("rss_open_kib", "store open"),
                      ("rss_with_orders_kib", f"{rust0['orders']} orders listed")]:
        print(f"  {what:<36} {best('rust', key):>9} {best('python', key):>9}")


if __name__ == "__main__":
    if sys.argv[1] == "--summary":
        summary(Path(sys.argv[2]))
    else:
        one_round(Path(sys.argv[1]), Path(sys.argv[2]))
