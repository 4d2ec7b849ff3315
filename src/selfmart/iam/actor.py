"""Who is acting: a user, a terminal, or the system (jobs, payment callbacks)."""

from __future__ import annotations

from dataclasses import dataclass, field

from selfmart.iam.permissions import Perm


@dataclass(frozen=True, slots=True)
class Actor:
    #: user | terminal | system | job | payment_callback
    kind: str
    id: int | None
    name: str
    permissions: frozenset[str] = field(default_factory=frozenset)
    #: None means every store (super admin, system); otherwise the stores this actor may touch.
    store_ids: frozenset[int] | None = frozenset()
    session_id: str | None = None
    #: Largest refund this actor may issue, in fen; None means no limit.
    refund_limit_fen: int | None = None
    #: A user who must change their password may only reach their profile, password and logout.
    must_change_password: bool = False

    def can(self, perm: Perm | str) -> bool:
        return str(perm) in self.permissions

    def sees_store(self, store_id: int | None) -> bool:
        return self.store_ids is None or (store_id is not None and store_id in self.store_ids)

    @property
    def audit_id(self) -> str | None:
        return None if self.id is None else str(self.id)


SYSTEM = Actor(kind="system", id=None, name="system", permissions=frozenset(Perm), store_ids=None)


def job_actor(name: str) -> Actor:
    return Actor(kind="job", id=None, name=name, permissions=frozenset(Perm), store_ids=None)
