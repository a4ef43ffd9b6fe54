"""The API stage: history over REST, live klines over a WebSocket, and the built chart."""

if __name__ != "cryptochart.api":  # a top-level folder, but one import namespace
    raise ImportError("api is part of cryptochart: import cryptochart.api")
