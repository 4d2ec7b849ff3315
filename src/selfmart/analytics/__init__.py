"""Analytics: sales summaries per store and local day, and the statistics read from them."""
