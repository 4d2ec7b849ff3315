"""Request and response bodies of frequently-bought-together: runs, rules, partners, the graph
and the suggestions. Support and confidence are fractions (0..1), lift a ratio (1 = independent)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field

from selfmart.kit.schema import Schema

MAX_LEN_LIMIT = 4


class BasketRunCreate(Schema):
    #: one store; omitted: every store (only for someone who sees every store)
    store_id: int | None = Field(default=None, ge=1, le=2_147_483_647)
    #: first and last local day of the window (inclusive)
    start: date
    end: date
    #: share of baskets an itemset must be in (0 < s <= 1)
    min_support: float = Field(default=0.001, gt=0, le=1)
    min_confidence: float = Field(default=0.1, ge=0, le=1)
    min_lift: float = Field(default=0.0, ge=0, le=1_000_000)
    #: largest itemset: 2 (pairs) up to 4
    max_len: int = Field(default=3, ge=2, le=MAX_LEN_LIMIT)


class BasketRunRead(Schema):
    id: int
    store_id: int | None
    store_name: str | None = None
    first_day: date
    last_day: date
    min_support: float
    min_confidence: float
    min_lift: float
    max_len: int
    trigger: str
    #: queued | running | succeeded | failed
    status: str
    job_id: int | None
    baskets: int
    products: int
    itemsets: int
    rules: int
    truncated: bool
    created_at: datetime
    finished_at: datetime | None
    #: the job's progress while it runs (0..100)
    progress: int | None = None


class ProductRef(Schema):
    product_id: int
    name: str
    spec: str


class BasketRuleRead(Schema):
    id: int
    size: int
    antecedent: list[ProductRef]
    consequent: list[ProductRef]
    #: baskets with every product of the rule
    count: int
    antecedent_count: int
    consequent_count: int
    support: float
    confidence: float
    lift: float


RuleSort = Literal["lift", "confidence", "support"]


class Partner(Schema):
    """A product bought with the one asked about: the rule product -> partner."""

    product: ProductRef
    count: int
    support: float
    #: share of the product's baskets that also hold the partner
    confidence: float
    lift: float


class BoughtWith(Schema):
    product: ProductRef
    #: baskets holding the product (null: it is not a frequent product of the run)
    count: int | None
    support: float | None
    partners: list[Partner]


class GraphNode(Schema):
    product_id: int
    name: str
    spec: str
    count: int
    support: float


class GraphEdge(Schema):
    source: int
    target: int
    count: int
    support: float
    lift: float
    #: confidence of source -> target and of target -> source
    confidence: float
    confidence_back: float


class BasketGraph(Schema):
    nodes: list[GraphNode]
    edges: list[GraphEdge]


class Suggestion(Schema):
    """shelf: put `products[1:]` next to `products[0]` (most who buy the first also buy the
    others, far more often than chance); bundle: sell the products together as a set."""

    kind: Literal["shelf", "bundle"]
    products: list[ProductRef]
    count: int
    support: float
    confidence: float
    lift: float


class RunProduct(Schema):
    """A frequent product of a run."""

    product_id: int
    name: str
    spec: str
    count: int
    support: float
