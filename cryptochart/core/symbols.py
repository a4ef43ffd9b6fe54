"""Symbol lists: a comma-separated list, or a count (``50``) that takes the first N of a catalogue
of real Binance USDT pairs, followed by numbered simulated names past its end."""

from __future__ import annotations

CATALOGUE = [
    "BTCUSDT",
    "ETHUSDT",
    "BNBUSDT",
    "SOLUSDT",
    "XRPUSDT",
    "DOGEUSDT",
    "ADAUSDT",
    "TRXUSDT",
    "AVAXUSDT",
    "LINKUSDT",
    "DOTUSDT",
    "LTCUSDT",
    "BCHUSDT",
    "NEARUSDT",
    "UNIUSDT",
    "APTUSDT",
    "ICPUSDT",
    "ETCUSDT",
    "FILUSDT",
    "ATOMUSDT",
    "XLMUSDT",
    "ARBUSDT",
    "OPUSDT",
    "INJUSDT",
    "SUIUSDT",
    "HBARUSDT",
    "VETUSDT",
    "ALGOUSDT",
    "AAVEUSDT",
    "GRTUSDT",
    "SEIUSDT",
    "RUNEUSDT",
    "SANDUSDT",
    "MANAUSDT",
    "AXSUSDT",
    "EGLDUSDT",
    "THETAUSDT",
    "FTMUSDT",
    "XTZUSDT",
    "EOSUSDT",
    "FLOWUSDT",
    "CHZUSDT",
    "CRVUSDT",
    "MKRUSDT",
    "SNXUSDT",
    "COMPUSDT",
    "ZECUSDT",
    "DASHUSDT",
    "ENJUSDT",
    "KAVAUSDT",
]


def parse_symbols(raw: str) -> tuple[str, ...]:
    """``"BTCUSDT,ETHUSDT"`` → those; ``"120"`` → 120 symbols. Raises ValueError when invalid."""
    raw = raw.strip()
    if raw.isdigit():
        count = int(raw)
        if not 1 <= count <= 100_000:
            raise ValueError("a symbol count must be between 1 and 100000")
        extra = (f"SIM{i:05d}USDT" for i in range(count - len(CATALOGUE)))
        return (*CATALOGUE[:count], *extra)
    symbols = tuple(dict.fromkeys(s.strip().upper() for s in raw.split(",") if s.strip()))
    if not symbols:
        raise ValueError("no symbols given")
    for symbol in symbols:
        if not symbol.isalnum() or len(symbol) > 20:
            raise ValueError(f"symbol {symbol!r} is not 1-20 letters and digits")
    return symbols
