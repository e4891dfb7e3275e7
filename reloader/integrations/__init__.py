"""Bridges to frameworks that want to hear about changes, each imported only when used."""

__all__: list[str] = []
