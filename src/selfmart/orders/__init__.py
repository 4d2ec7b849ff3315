"""Orders: intake from terminals, the lifecycle, abnormal orders, search, look-up, refunds."""
