"""Payments: the channel seam orders pay and refund through, and the payment records."""
