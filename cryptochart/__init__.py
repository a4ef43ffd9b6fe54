"""cryptochart: exchange 1s klines into a live browser chart and into SQL."""
