"""Kline sources: Binance live, simulated and replayed feeds behind one async interface."""
