"""Market business logic: the only place that writes market data.

- ``ledger``: accounts and balanced money movements;
- ``trading``: a question's market, quotes and trades;
- ``settlement``: the market follows its question's status (run by ``market/receivers.py``);
- ``portfolio``: positions and the profit leaderboard, read-only.

Every write is one atomic transaction; bad input raises ``ValidationError`` and changes nothing.
"""

from .ledger import account_balance, account_for_user
from .portfolio import PositionView, portfolio, profit_leaderboard
from .settlement import market_sync_with_question
from .trading import market_create, market_prices, market_quote, trade_execute

__all__ = [
    "PositionView",
    "account_balance",
    "account_for_user",
    "market_create",
    "market_prices",
    "market_quote",
    "market_sync_with_question",
    "portfolio",
    "profit_leaderboard",
    "trade_execute",
]
