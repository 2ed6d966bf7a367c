"""The calls of mobile/benches/bindings.rs made through the generated Python bindings, on the
store with 1,000 orders that the Rust bench left.

Run by scripts/bindings-bench after each run of the Rust bench:
  python bindings.py BENCH_DIR FIXTURES_DIR   one round: appends both sides' figures to
                                              BENCH_DIR/rounds.jsonl
  python bindings.py --memory BENCH_DIR       memory added by opening and listing, fresh process
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
    path = str(fixtures / "photos/DSCN0010.jpg")

    def record_file():
        at[0] += 1_000
        fix = fm.LocationFix(lat=43.467448, lon=11.885127, accuracy_m=8.0, at_ms=at[0],
                             mock=False)
        phone.record_photo_file_blocking("order-0005", path, fix, at[0])

    record_file_us = median_us(RUNS, record_file)

    # What passing the photo's bytes across costs: the same refused call with 1 byte and with
    # the photo (the order is unknown, so nothing else happens).
    def crossing(payload):
        def call():
            try:
                phone.import_gpx("no-such-order", payload)
            except fm.MobileError.Invalid:
                pass
        return median_us(RUNS, call)

    bytes_us = crossing(photo) - crossing(b"x")
    python = {"open_store_us": open_us, "record_photo_us": record_us,
              "record_photo_file_us": record_file_us, "bytes_crossing_us": bytes_us}
    with open(bench / "rounds.jsonl", "a") as f:
        f.write(json.dumps({"rust": rust, "python": python}) + "\n")


def memory(bench):
    """In a fresh process, as the Rust side: memory added by opening and listing."""
    sys.path.insert(0, os.environ["FLEXWORK_BINDINGS_DIR"])
    import flexwork_mobile as fm

    before = rss_kib()
    phone = fm.Phone.open(str(bench / "store"))
    rss_open = rss_kib() - before
    orders = phone.orders()
    rss_with_orders = rss_kib() - before
    (bench / "memory-python.json").write_text(json.dumps({
        "rss_open_kib": rss_open, "rss_with_orders_kib": rss_with_orders,
        "orders": len(orders)}))


def summary(bench):
    rounds = [json.loads(line) for line in (bench / "rounds.jsonl").read_text().splitlines()]
    rust0 = rounds[0]["rust"]

    def best(side, key):
        return min(r[side][key] for r in rounds)

    print(f"through the Python bindings vs direct Rust (client-core): best of {len(rounds)} "
          f"rounds, each the median of {RUNS} calls (µs)")
    print(f"  {'':<36} {'Rust':>9} {'Python':>9} {'binding':>9}")
    for what, key in [(f"open a store with {rust0['orders']} orders", "open_store_us"),
                      ("record one photo from its file", "record_photo_file_us"),
                      (f"record one photo's bytes ({rust0['photo_bytes']} B)",
                       "record_photo_us")]:
        direct, bound = best("rust", key), best("python", key)
        print(f"  {what:<36} {direct:>9.1f} {bound:>9.1f} {(bound - direct) / direct:>+9.1%}")
    print(f"  passing the photo's {rust0['photo_bytes']} bytes across (Python → Rust): "
          f"{best('python', 'bytes_crossing_us'):.1f}")
    print(f"  Rust side of the interface (Phone):  open {best('rust', 'phone_open_store_us'):.1f}"
          f", record {best('rust', 'phone_record_photo_us'):.1f}")
    rust_memory = json.loads((bench / "memory-rust.json").read_text())
    python_memory = json.loads((bench / "memory-python.json").read_text())
    print("memory, resident KiB added in a fresh process (Python: after importing the module):")
    for key, what in [("rss_open_kib", "open the store"),
                      ("rss_with_orders_kib", f"open and list {rust0['orders']} orders")]:
        print(f"  {what:<36} {rust_memory[key]:>9} {python_memory[key]:>9}")


if __name__ == "__main__":
    if sys.argv[1] == "--summary":
        summary(Path(sys.argv[2]))
    elif sys.argv[1] == "--memory":
        memory(Path(sys.argv[2]))
    else:
        one_round(Path(sys.argv[1]), Path(sys.argv[2]))
