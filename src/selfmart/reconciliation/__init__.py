"""Reconciliation (对账): each merchant account's daily bill matched against our payments."""
