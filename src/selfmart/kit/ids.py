"""Ids as input: bounded to what the column can hold, so a number no row can have is refused
with a 422 naming the field instead of reaching the database (PostgreSQL refuses an int4
parameter above 2**31-1, and both databases one above 2**63-1, with an error: a 500).

Tables whose key is `Mapped[int] = mapped_column(primary_key=True)` hold 32-bit ids; tables
keyed by `db.BigIntId` hold 64-bit ones. tests/test_input_bounds.py fails on any integer or
string input in the OpenAPI document without bounds.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import Field

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

#: A 32-bit id in a body.
Id = Annotated[int, Field(ge=1, le=INT32_MAX)]
#: A 64-bit id (a `BigIntId` table) in a body.
BigId = Annotated[int, Field(ge=1, le=INT64_MAX)]
#: Path parameters: `store_id: PathId`.
PathId = Annotated[int, Path(ge=1, le=INT32_MAX)]
BigPathId = Annotated[int, Path(ge=1, le=INT64_MAX)]
#: Optional query filters: `store_id: QueryId = None`.
QueryId = Annotated[int | None, Query(ge=1, le=INT32_MAX)]
BigQueryId = Annotated[int | None, Query(ge=1, le=INT64_MAX)]
