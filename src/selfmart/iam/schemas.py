"""Request and response bodies of the iam domain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, EmailStr, Field, StringConstraints, field_validator

from selfmart.kit.money import Fen
from selfmart.kit.schema import InSchema, Schema
from selfmart.kit.time import utcnow
from selfmart.models import Role, User

#: Primary keys are 32-bit integers; bigger numbers are refused as input instead of
#: reaching the database (where PostgreSQL would refuse them with an error).
Id = Annotated[int, Field(ge=1, le=2_147_483_647)]


def _lower(value: str) -> str:
    return value.lower()


Username = Annotated[
    str,
    StringConstraints(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$"),
    AfterValidator(_lower),
]
#: Passwords are taken exactly as typed: no whitespace stripping.
NewPassword = Annotated[
    str, StringConstraints(strip_whitespace=False, min_length=1, max_length=128)
]
#: A password to check against a stored hash; long enough for any we accept, short enough
#: that nobody makes the server hash megabytes.
GivenPassword = Annotated[
    str, StringConstraints(strip_whitespace=False, min_length=1, max_length=1024)
]
DisplayName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Phone = Annotated[str, StringConstraints(min_length=3, max_length=32, pattern=r"^\+?[0-9 -]+$")]
Email = Annotated[EmailStr, StringConstraints(max_length=254)]
Locale = Literal["zh-CN", "en"]
RoleCode = Annotated[
    str, StringConstraints(min_length=2, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
]
PermissionCode = Annotated[str, StringConstraints(min_length=1, max_length=64)]


def _not_null(value: Any) -> Any:
    """In a partial update an omitted field means "keep"; null is refused where it has no
    meaning (a name cannot be cleared)."""
    if value is None:
        raise ValueError("may not be null")
    return value


# --- auth ---------------------------------------------------------------------------------


class LoginIn(InSchema):
    opaque_fields = frozenset({"password"})
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: GivenPassword


class RefreshIn(InSchema):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class TokenPair(Schema):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    #: Seconds until the access token expires.
    expires_in: int
    must_change_password: bool


class PasswordChange(InSchema):
    opaque_fields = frozenset({"current_password"})
    current_password: GivenPassword
    new_password: NewPassword


class RoleRef(Schema):
    id: int
    code: str
    name: str


class Me(Schema):
    id: int
    username: str
    display_name: str
    email: str | None
    phone: str | None
    locale: str
    roles: list[RoleRef]
    permissions: list[str]
    #: None means every store.
    store_ids: list[int] | None
    must_change_password: bool
    #: The most one refund may be, in fen, by the user's roles; None: no limit. Only meaningful
    #: with the orders.refund permission. The console shows it before a refund is tried.
    refund_limit_fen: int | None = None


class MeUpdate(InSchema):
    display_name: DisplayName | None = None
    email: Email | None = None
    phone: Phone | None = None
    locale: Locale | None = None

    _refuse_null = field_validator("display_name", "locale", mode="before")(_not_null)


class PermissionInfo(Schema):
    code: str
    group: str


# --- users --------------------------------------------------------------------------------


class UserRead(Schema):
    id: int
    username: str
    display_name: str
    email: str | None
    phone: str | None
    is_active: bool
    locked: bool
    locked_until: datetime | None
    must_change_password: bool
    last_login_at: datetime | None
    created_at: datetime
    roles: list[RoleRef]
    store_ids: list[int]

    @classmethod
    def of(cls, user: User) -> UserRead:
        """From a User loaded with its roles and stores."""
        locked = user.locked_until is not None and user.locked_until > utcnow()
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            email=user.email,
            phone=user.phone,
            is_active=user.is_active,
            locked=locked,
            locked_until=user.locked_until if locked else None,
            must_change_password=user.must_change_password,
            last_login_at=user.last_login_at,
            created_at=user.created_at,
            roles=[RoleRef.model_validate(r) for r in sorted(user.roles, key=lambda r: r.id)],
            store_ids=sorted(s.store_id for s in user.stores),
        )


class UserCreate(InSchema):
    username: Username
    display_name: DisplayName
    password: NewPassword
    email: Email | None = None
    phone: Phone | None = None
    role_ids: Annotated[list[Id], Field(max_length=50)]
    store_ids: Annotated[list[Id], Field(max_length=1000)]


class UserUpdate(InSchema):
    display_name: DisplayName | None = None
    email: Email | None = None
    phone: Phone | None = None
    role_ids: Annotated[list[Id], Field(max_length=50)] | None = None
    store_ids: Annotated[list[Id], Field(max_length=1000)] | None = None

    _refuse_null = field_validator("display_name", "role_ids", "store_ids", mode="before")(
        _not_null
    )


class PasswordReset(InSchema):
    new_password: NewPassword


# --- roles --------------------------------------------------------------------------------


class RoleRead(Schema):
    id: int
    code: str
    name: str
    description: str
    is_builtin: bool
    all_stores: bool
    refund_limit_fen: int | None
    permissions: list[str]
    user_count: int

    @classmethod
    def of(cls, role: Role, user_count: int) -> RoleRead:
        """From a Role loaded with its permissions."""
        return cls(
            id=role.id,
            code=role.code,
            name=role.name,
            description=role.description,
            is_builtin=role.is_builtin,
            all_stores=role.all_stores,
            refund_limit_fen=role.refund_limit_fen,
            permissions=sorted(p.permission for p in role.permissions),
            user_count=user_count,
        )


class RoleCreate(InSchema):
    code: RoleCode
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    description: Annotated[str, StringConstraints(max_length=500)] = ""
    permissions: Annotated[list[PermissionCode], Field(max_length=200)]
    #: None: no limit on refunds by people with this role.
    refund_limit_fen: Fen | None = None


class RoleUpdate(InSchema):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    permissions: Annotated[list[PermissionCode], Field(max_length=200)] | None = None
    #: null: no limit.
    refund_limit_fen: Fen | None = None

    _refuse_null = field_validator("name", "description", "permissions", mode="before")(_not_null)


# --- login log ----------------------------------------------------------------------------


class LoginLogRead(Schema):
    id: int
    created_at: datetime
    username: str
    user_id: int | None
    success: bool
    reason: str
    ip: str | None
    user_agent: str | None
