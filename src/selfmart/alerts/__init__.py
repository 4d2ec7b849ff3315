"""Alert rules an operator sets, their evaluation every minute, and the alerts they raise."""
