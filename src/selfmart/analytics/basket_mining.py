"""Frequent itemsets and association rules over baskets, in numpy and scipy.sparse (no database).

A basket is a set of item indices (one row of a CSR matrix). Definitions are those of the
classic literature and of mlxtend, which the tests use as the reference:

- support(S) = baskets containing every item of S / all baskets;
- an itemset is frequent when support(S) >= min_support;
- a rule A -> C (A, C disjoint, non-empty, A ∪ C frequent) has support(A ∪ C),
  confidence = support(A ∪ C) / support(A) and lift = confidence / support(C).

Pairs are counted with one sparse product (Xᵀ·X); larger itemsets by enumerating, per basket,
the combinations of items that still can be frequent (Apriori: every item of a frequent triple
is in a frequent pair), encoding each as one int64 and counting with numpy.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import sparse

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: Largest itemset size supported (the int64 encoding of an itemset needs P**k < 2**63).
MAX_LEN = 4
#: Combinations enumerated per counting step (bounds the memory of larger itemsets).
_COMBO_CHUNK = 4_000_000

Progress = Callable[[float], None]


@dataclass
class Baskets:
    """Baskets as CSR: the items of basket i are `items[indptr[i]:indptr[i + 1]]`, distinct
    column indices into `labels` (e.g. product ids)."""

    indptr: IntArray
    items: IntArray
    labels: IntArray

    @property
    def count(self) -> int:
        return len(self.indptr) - 1

    @classmethod
    def from_pairs(cls, basket_keys: IntArray, labels: IntArray) -> Baskets:
        """From (basket key, label) rows in any order, duplicates allowed (two lines of one
        product are one item of the basket)."""
        if len(basket_keys) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return cls(indptr=np.zeros(1, dtype=np.int64), items=empty, labels=empty)
        uniq_labels, cols = np.unique(labels, return_inverse=True)
        _, rows = np.unique(basket_keys, return_inverse=True)
        n_rows = int(rows.max()) + 1
        m = sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.int8), (rows, cols)),
            shape=(n_rows, len(uniq_labels)),
        )
        m.sum_duplicates()
        m.sort_indices()
        return cls(
            indptr=m.indptr.astype(np.int64),
            items=m.indices.astype(np.int64),
            labels=uniq_labels.astype(np.int64),
        )

    @classmethod
    def from_lists(cls, baskets: list[list[int]]) -> Baskets:
        keys = np.repeat(np.arange(len(baskets), dtype=np.int64), [len(b) for b in baskets])
        flat = np.fromiter(itertools.chain.from_iterable(baskets), dtype=np.int64)
        out = cls.from_pairs(keys, flat)
        if out.count < len(baskets):  # trailing empty baskets still count as baskets
            pad = np.full(len(baskets) - out.count, out.indptr[-1], dtype=np.int64)
            out.indptr = np.concatenate([out.indptr, pad])
        return out


@dataclass
class Level:
    """The frequent itemsets of one size: `sets[i]` (sorted column indices) seen in
    `counts[i]` baskets; rows sorted by their int64 code, for look-ups."""

    sets: IntArray
    counts: IntArray
    codes: IntArray

    def lookup(self, sets: IntArray, base: int) -> IntArray:
        """Counts of the given (sorted, frequent) itemsets of this size."""
        codes = _encode(sets, base)
        pos = np.searchsorted(self.codes, codes)
        return self.counts[pos]


@dataclass
class Rules:
    """Rules as parallel arrays; antecedent and consequent items are labels (product ids)."""

    antecedents: list[tuple[int, ...]] = field(default_factory=list)
    consequents: list[tuple[int, ...]] = field(default_factory=list)
    count: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    antecedent_count: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    consequent_count: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    support: FloatArray = field(default_factory=lambda: np.zeros(0))
    confidence: FloatArray = field(default_factory=lambda: np.zeros(0))
    lift: FloatArray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return len(self.antecedents)


@dataclass
class Mined:
    baskets: int
    #: size -> frequent itemsets of that size (size 1 included)
    levels: dict[int, Level]
    labels: IntArray

    def itemsets(self) -> dict[tuple[int, ...], int]:
        """Every frequent itemset as sorted labels -> basket count (for tests and small runs)."""
        out: dict[tuple[int, ...], int] = {}
        for level in self.levels.values():
            for s, c in zip(level.sets, level.counts, strict=True):
                out[tuple(sorted(int(self.labels[i]) for i in s))] = int(c)
        return out


def _encode(sets: IntArray, base: int) -> IntArray:
    code = np.zeros(len(sets), dtype=np.int64)
    for j in range(sets.shape[1]):
        code = code * base + sets[:, j]
    return code


def _decode(codes: IntArray, base: int, k: int) -> IntArray:
    out = np.empty((len(codes), k), dtype=np.int64)
    rest = codes.copy()
    for j in range(k - 1, -1, -1):
        out[:, j] = rest % base
        rest //= base
    return out


def _is_frequent(counts: IntArray, n: int, min_support: float) -> npt.NDArray[np.bool_]:
    # The same float comparison as the reference (count / n >= min_support), so a threshold
    # that falls exactly on a count decides the same way.
    return np.asarray(counts / float(n) >= min_support)


def _filter(b: Baskets, keep: npt.NDArray[np.bool_]) -> tuple[IntArray, IntArray]:
    """indptr and items of the baskets restricted to the items where `keep` is true."""
    mask = keep[b.items]
    kept = np.zeros(len(mask) + 1, dtype=np.int64)
    np.cumsum(mask, out=kept[1:])
    return kept[b.indptr], b.items[mask]


def _count_pairs(
    indptr: IntArray, items: IntArray, n_items: int, n_baskets: int
) -> tuple[IntArray, IntArray]:
    """(pairs as sorted index rows, counts) of every pair seen in some basket."""
    x = sparse.csr_matrix(
        (np.ones(len(items), dtype=np.int32), items, indptr), shape=(n_baskets, n_items)
    )
    co = sparse.triu(x.T.tocsr() @ x, k=1).tocoo()
    pairs = np.stack([co.row.astype(np.int64), co.col.astype(np.int64)], axis=1)
    return pairs, co.data.astype(np.int64)


def _count_combinations(
    indptr: IntArray, items: IntArray, k: int, base: int
) -> tuple[IntArray, IntArray]:
    """(codes, counts) of every k-combination of items seen in some basket."""
    lengths = np.diff(indptr)
    found_codes: list[IntArray] = []
    found_counts: list[IntArray] = []
    for length in np.unique(lengths[lengths >= k]):
        length = int(length)
        starts = indptr[:-1][lengths == length]
        combos = np.array(list(itertools.combinations(range(length), k)), dtype=np.int64)
        per_chunk = max(1, _COMBO_CHUNK // len(combos))
        for i in range(0, len(starts), per_chunk):
            rows = items[starts[i : i + per_chunk, None] + np.arange(length)]  # (m, length)
            sets = rows[:, combos].reshape(-1, k)  # items are sorted within a basket
            codes, counts = np.unique(_encode(sets, base), return_counts=True)
            found_codes.append(codes)
            found_counts.append(counts.astype(np.int64))
    if not found_codes:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    all_codes = np.concatenate(found_codes)
    all_counts = np.concatenate(found_counts)
    codes, inverse = np.unique(all_codes, return_inverse=True)
    return codes, np.bincount(inverse, weights=all_counts).astype(np.int64)


def frequent_itemsets(
    b: Baskets, *, min_support: float, max_len: int = 2, progress: Progress | None = None
) -> Mined:
    """Every itemset of 1..max_len items with support >= min_support."""
    if not 0 < min_support <= 1:
        raise ValueError("min_support must be in (0, 1]")
    if not 1 <= max_len <= MAX_LEN:
        raise ValueError(f"max_len must be in 1..{MAX_LEN}")
    n = b.count
    base = max(len(b.labels), 1)
    levels: dict[int, Level] = {}
    empty = Level(
        sets=np.zeros((0, 1), dtype=np.int64),
        counts=np.zeros(0, dtype=np.int64),
        codes=np.zeros(0, dtype=np.int64),
    )
    if n == 0:
        return Mined(baskets=0, levels={1: empty}, labels=b.labels)
    item_counts = np.bincount(b.items, minlength=len(b.labels)).astype(np.int64)
    keep = _is_frequent(item_counts, n, min_support)
    singles = np.flatnonzero(keep).astype(np.int64)
    levels[1] = Level(sets=singles[:, None], counts=item_counts[singles], codes=singles)
    if progress:
        progress(1 / max_len)
    if max_len < 2 or len(singles) < 2:
        return Mined(baskets=n, levels=levels, labels=b.labels)

    indptr, items = _filter(b, keep)
    pairs, counts = _count_pairs(indptr, items, len(b.labels), n)
    ok = _is_frequent(counts, n, min_support)
    pairs, counts = pairs[ok], counts[ok]
    codes = _encode(pairs, base)
    order = np.argsort(codes)
    levels[2] = Level(sets=pairs[order], counts=counts[order], codes=codes[order])
    if progress:
        progress(2 / max_len)

    for k in range(3, max_len + 1):
        prev = levels[k - 1]
        if len(prev.counts) < k:  # k-sets need at least k frequent (k-1)-sets
            break
        keep = np.zeros(len(b.labels), dtype=bool)
        keep[prev.sets.ravel()] = True
        indptr, items = _filter(b, keep)
        codes, counts = _count_combinations(indptr, items, k, base)
        ok = _is_frequent(counts, n, min_support)
        codes, counts = codes[ok], counts[ok]
        levels[k] = Level(sets=_decode(codes, base, k), counts=counts, codes=codes)
        if progress:
            progress(k / max_len)
        if len(codes) == 0:
            break
    return Mined(baskets=n, levels=levels, labels=b.labels)


def association_rules(mined: Mined, *, min_confidence: float = 0.0, min_lift: float = 0.0) -> Rules:
    """Every rule A -> C over the frequent itemsets of two or more items with confidence and
    lift at or above the thresholds."""
    n = float(mined.baskets)
    base = max(len(mined.labels), 1)
    out = Rules()
    parts: dict[str, list[npt.NDArray[np.generic]]] = {
        k: [] for k in ("count", "a_count", "c_count", "support", "confidence", "lift")
    }
    for k, level in sorted(mined.levels.items()):
        if k < 2 or len(level.counts) == 0:
            continue
        sets = level.sets
        for a_size in range(1, k):
            for a_cols in itertools.combinations(range(k), a_size):
                c_cols = tuple(j for j in range(k) if j not in a_cols)
                a = sets[:, list(a_cols)]
                c = sets[:, list(c_cols)]
                a_count = mined.levels[a_size].lookup(a, base)
                c_count = mined.levels[k - a_size].lookup(c, base)
                # Supports as fractions, multiplied back by n, as the reference computes
                # them: the same float operations give the same bits, so a rule on the
                # confidence threshold is kept or dropped alike.
                support = level.counts / n
                confidence = (support * n) / ((a_count / n) * n)
                lift = confidence / (c_count / n)
                ok = (confidence >= min_confidence) & (lift >= min_lift)
                if not ok.any():
                    continue
                labels = mined.labels
                out.antecedents.extend(map(tuple, labels[a[ok]].tolist()))
                out.consequents.extend(map(tuple, labels[c[ok]].tolist()))
                parts["count"].append(level.counts[ok])
                parts["a_count"].append(a_count[ok])
                parts["c_count"].append(c_count[ok])
                parts["support"].append(support[ok])
                parts["confidence"].append(confidence[ok])
                parts["lift"].append(lift[ok])
    if out.antecedents:
        out.count = np.concatenate(parts["count"]).astype(np.int64)
        out.antecedent_count = np.concatenate(parts["a_count"]).astype(np.int64)
        out.consequent_count = np.concatenate(parts["c_count"]).astype(np.int64)
        out.support = np.concatenate(parts["support"]).astype(np.float64)
        out.confidence = np.concatenate(parts["confidence"]).astype(np.float64)
        out.lift = np.concatenate(parts["lift"]).astype(np.float64)
    return out


def top_partners(mined: Mined, top: int = 10) -> dict[int, list[tuple[int, int]]]:
    """For every item in a frequent pair: its `top` partners by baskets together (the most
    confident rules item -> partner), ties by partner label; as label -> [(partner, count)]."""
    level = mined.levels.get(2)
    if level is None or len(level.counts) == 0:
        return {}
    a = np.concatenate([level.sets[:, 0], level.sets[:, 1]])
    b = np.concatenate([level.sets[:, 1], level.sets[:, 0]])
    c = np.concatenate([level.counts, level.counts])
    labels = mined.labels
    order = np.lexsort((labels[b], -c, a))
    a, b, c = a[order], b[order], c[order]
    starts = np.flatnonzero(np.r_[True, a[1:] != a[:-1]])
    rank = np.arange(len(a)) - np.repeat(starts, np.diff(np.r_[starts, len(a)]))
    keep = rank < top
    a, b, c = labels[a[keep]], labels[b[keep]], c[keep]
    out: dict[int, list[tuple[int, int]]] = {}
    for x, y, z in zip(a.tolist(), b.tolist(), c.tolist(), strict=True):
        out.setdefault(x, []).append((y, z))
    return out
