"""The purchasing domain: suppliers, purchase orders, reorder suggestions, transfers between
stores and stocktakes; every stock effect is booked through the inventory service."""
