"""Every domain router, in one list, so app.py stays free of domain imports."""

from __future__ import annotations

from fastapi import APIRouter

from selfmart.alerts.router import router as alerts_router
from selfmart.analytics.router import router as analytics_router
from selfmart.audit.router import router as audit_router
from selfmart.backup.router import router as backup_router
from selfmart.behaviour.router import router as behaviour_router
from selfmart.behaviour.router import terminal_router as behaviour_terminal_router
from selfmart.catalog.router import router as catalog_router
from selfmart.iam.router import router as iam_router
from selfmart.inventory.router import router as inventory_router
from selfmart.jobs.router import router as jobs_router
from selfmart.maintenance.router import router as maintenance_router
from selfmart.members.checkout_router import portal_router as members_portal_router
from selfmart.members.checkout_router import terminal_router as members_terminal_router
from selfmart.members.router import offers_router as member_offers_router
from selfmart.members.router import router as members_router
from selfmart.monitoring.router import console_router as monitoring_router
from selfmart.notify.router import router as notify_router
from selfmart.orders.router import public_router as orders_public_router
from selfmart.orders.router import router as orders_router
from selfmart.orders.router import terminal_router as orders_terminal_router
from selfmart.payments.router import notify_router as payments_notify_router
from selfmart.payments.router import payments_router as payments_records_router
from selfmart.payments.router import public_router as payments_public_router
from selfmart.payments.router import router as payments_router
from selfmart.payments.router import terminal_router as payments_terminal_router
from selfmart.purchasing.router import router as purchasing_router
from selfmart.reconciliation.router import router as reconciliation_router
from selfmart.settlement.router import router as settlement_router
from selfmart.stores.router import router as stores_router
from selfmart.terminals.router import router as terminals_router
from selfmart.terminals.router import terminal_api

#: Console API, mounted under /api/v1.
API_ROUTERS: list[APIRouter] = [
    iam_router,
    stores_router,
    terminals_router,
    audit_router,
    notify_router,
    orders_router,
    orders_public_router,
    payments_router,
    payments_records_router,
    payments_public_router,
    catalog_router,
    inventory_router,
    purchasing_router,
    jobs_router,
    monitoring_router,
    alerts_router,
    backup_router,
    member_offers_router,  # before members_router: /members/segments is not a member id
    members_router,
    members_portal_router,
    analytics_router,
    reconciliation_router,
    maintenance_router,
    settlement_router,
    behaviour_router,
]

#: Terminal API (HMAC-signed), mounted under /api/terminal/v1.
TERMINAL_ROUTERS: list[APIRouter] = [
    terminal_api,
    orders_terminal_router,
    payments_terminal_router,
    members_terminal_router,
    behaviour_terminal_router,
]

#: Platform callbacks (public: the platform's signature is the credential), under /api.
NOTIFY_ROUTERS: list[APIRouter] = [payments_notify_router]
