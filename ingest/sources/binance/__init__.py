"""Binance: the combined kline stream (``stream``), its messages (``messages``), REST klines for
gap repair (``rest``), and the source that joins them (``feed``)."""
