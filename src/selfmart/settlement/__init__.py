"""Settlement (结算): platform fees, store settlement, supplier statements."""
