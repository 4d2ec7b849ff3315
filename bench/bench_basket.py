"""Frequently bought together over a million baskets: the full top-10 partners of every product,
by selfmart's miner (numpy + scipy.sparse) beside mlxtend's fpgrowth + association_rules with the
same threshold, in the same run; time and peak memory of each, and a check that both found the
same partners with the same counts.

Each side runs in its own child process (the same seeded baskets are generated in each) so its
peak memory is its own: the whole process's peak resident set (VmHWM) from the moment the
baskets are ready (the peak is reset then through /proc/self/clear_refs), so it counts the
interpreter and the baskets but not the generator's scratch. The database read is not in these
figures: the job reads baskets with one streamed query.

mlxtend takes minutes at this size on our 2-core machines (about 500 s for the million, and
5 GB: its fpgrowth densifies the one-hot frame); it is given SELFMART_BENCH_REFERENCE_SECONDS
(default 300) and, past them, stopped: the ratio is then printed as a lower bound.

    SELFMART_BENCH_BASKETS   baskets (default 1,000,000)
    SELFMART_BENCH_PRODUCTS  products (default 5,000)
    SELFMART_BENCH_MIN_COUNT baskets a pair needs to count (default 5): min_support = it / baskets
    SELFMART_BENCH_REFERENCE_SECONDS  the time mlxtend is given (default 300; 0: no limit)
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from selfmart.analytics.basket_mining import (  # noqa: E402
    Baskets,
    frequent_itemsets,
    top_partners,
)

SEED = 20261206
TOP = 10


def synthetic_baskets(n: int, products: int) -> Baskets:
    """Baskets of 1..30 items (about 4 on average) drawn from a Zipf-like popularity (a few
    staples in most baskets, a long tail seldom bought), with some planted companions (a
    product's companion joins it in a third of its baskets), as a supermarket's look."""
    rng = np.random.default_rng(SEED)
    sizes = np.clip(rng.geometric(0.27, size=n), 1, 30)
    weights = 1.0 / np.arange(1, products + 1) ** 1.05
    weights /= weights.sum()
    total = int(sizes.sum())
    items = rng.choice(products, size=total, p=weights).astype(np.int64)
    keys = np.repeat(np.arange(n, dtype=np.int64), sizes)
    companion = rng.permutation(products).astype(np.int64)
    joins = rng.random(total) < 0.33
    keys = np.concatenate([keys, keys[joins]])
    items = np.concatenate([items, companion[items[joins]]])
    return Baskets.from_pairs(keys, items + 1)  # product ids start at 1


def digest(partners: dict[int, list[tuple[int, int]]]) -> str:
    text = json.dumps(sorted((k, v) for k, v in partners.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def peak_rss_mb(pid: int | str = "self") -> float:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak() -> None:
    """Start the peak resident set afresh from the current one (Linux >= 4.0)."""
    import gc

    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def run_ours(b: Baskets, min_support: float) -> dict[int, list[tuple[int, int]]]:
    mined = frequent_itemsets(b, min_support=min_support, max_len=2)
    return top_partners(mined, TOP)


def run_mlxtend(b: Baskets, min_support: float) -> tuple[dict[int, list[tuple[int, int]]], float]:
    """fpgrowth over a sparse one-hot DataFrame (a dense one of a million rows by 5,000
    products would be 5 GB), then association_rules and the top 10 consequents by confidence
    of each antecedent. Returns the partners and the seconds spent building the DataFrame
    (reported apart: it is input preparation, not mining)."""
    import pandas as pd
    from mlxtend.frequent_patterns import association_rules, fpgrowth
    from scipy import sparse

    t0 = time.perf_counter()
    x = sparse.csr_matrix(
        (np.ones(len(b.items), dtype=bool), b.items, b.indptr), shape=(b.count, len(b.labels))
    )
    # column names 0..P-1 (mlxtend's rule for sparse frames), mapped back to product ids below
    df = pd.DataFrame.sparse.from_spmatrix(x)
    build = time.perf_counter() - t0
    itemsets = fpgrowth(df, min_support=min_support, use_colnames=True, max_len=2)
    rules = association_rules(itemsets, num_itemsets=b.count, metric="confidence", min_threshold=0)
    n = b.count
    rules["a"] = [int(b.labels[next(iter(s))]) for s in rules["antecedents"]]
    rules["c"] = [int(b.labels[next(iter(s))]) for s in rules["consequents"]]
    rules["count"] = (rules["support"] * n).round().astype(np.int64)
    rules = rules.sort_values(["a", "count", "c"], ascending=[True, False, True])
    top = rules.groupby("a", sort=True).head(TOP)
    out: dict[int, list[tuple[int, int]]] = {}
    for a, c, k in zip(top["a"], top["c"], top["count"], strict=True):
        out.setdefault(int(a), []).append((int(c), int(k)))
    return out, build


def child(which: str, n: int, products: int, min_count: int) -> dict[str, Any]:
    b = synthetic_baskets(n, products)
    min_support = min_count / b.count
    reset_peak()
    base = peak_rss_mb()
    t0 = time.perf_counter()
    c0 = time.process_time()
    build = 0.0
    if which == "ours":
        partners = run_ours(b, min_support)
    else:
        partners, build = run_mlxtend(b, min_support)
    seconds = time.perf_counter() - t0 - build
    cpu = time.process_time() - c0
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "build_seconds": build,
        "peak_mb": peak_rss_mb(),
        "baseline_mb": base,
        "products_with_partners": len(partners),
        "digest": digest(partners),
        "baskets": b.count,
        "lines": len(b.items),
    }


def spawn(which: str, n: int, products: int, min_count: int, limit: float) -> dict[str, Any]:
    """Run one side in a child; past `limit` seconds (0: none) of mining it is stopped and what
    it had reached is returned with "stopped": True."""
    child_proc = subprocess.Popen(
        [sys.executable, __file__, "--child", which, str(n), str(products), str(min_count)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = time.perf_counter()
    peak = 0.0
    while child_proc.poll() is None:
        peak = max(peak, peak_rss_mb(child_proc.pid))
        if limit and time.perf_counter() - started > limit + 60:  # + generating the baskets
            cpu = cpu_seconds(child_proc.pid)
            child_proc.kill()
            child_proc.wait()
            return {"stopped": True, "seconds": limit, "cpu_seconds": cpu, "peak_mb": peak}
        time.sleep(0.5)
    out, err = child_proc.communicate()
    if child_proc.returncode != 0:
        raise RuntimeError(f"{which} failed: {err[-2000:]}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    n = int(os.environ.get("SELFMART_BENCH_BASKETS", "1000000"))
    products = int(os.environ.get("SELFMART_BENCH_PRODUCTS", "5000"))
    min_count = int(os.environ.get("SELFMART_BENCH_MIN_COUNT", "5"))
    limit = float(os.environ.get("SELFMART_BENCH_REFERENCE_SECONDS", "300"))
    ours = spawn("ours", n, products, min_count, 0)
    ref = spawn("mlxtend", n, products, min_count, limit)
    print(
        f"baskets: {ours['baskets']:,} ({ours['lines']:,} distinct items), {products:,} products,"
        f" pairs seen in >= {min_count} baskets, top {TOP} partners of "
        f"{ours['products_with_partners']:,} products"
    )
    print(
        f"selfmart: {ours['seconds']:.2f} s ({ours['cpu_seconds']:.2f} s CPU), "
        f"peak {ours['peak_mb']:.0f} MB (of which {ours['baseline_mb']:.0f} MB before mining)"
    )
    if ref.get("stopped"):
        print(
            f"mlxtend fpgrowth: stopped after {limit:.0f} s unfinished "
            f"({ref['cpu_seconds']:.0f} s CPU, with generating the baskets), "
            f"peak {ref['peak_mb']:.0f} MB by then"
        )
        print(
            f"basket_top_partners: more than {limit / ours['seconds']:.1f}x faster than mlxtend "
            f"(goal >= 5x), peak {ours['peak_mb']:.0f} MB (goal <= 1024 MB)"
        )
        return
    print(
        f"mlxtend fpgrowth: {ref['seconds']:.2f} s ({ref['cpu_seconds']:.2f} s CPU; "
        f"+{ref['build_seconds']:.2f} s building its DataFrame), peak {ref['peak_mb']:.0f} MB "
        f"(of which {ref['baseline_mb']:.0f} MB before)"
    )
    same = ours["digest"] == ref["digest"]
    print(f"same partners and counts: {'yes' if same else 'NO'}")
    print(
        f"basket_top_partners: {ref['seconds'] / ours['seconds']:.1f}x faster than mlxtend "
        f"({ref['cpu_seconds'] / ours['cpu_seconds']:.1f}x in CPU time) (goal >= 5x), "
        f"peak {ours['peak_mb']:.0f} MB (goal <= 1024 MB)"
    )


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))))
    else:
        main()
