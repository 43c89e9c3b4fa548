"""Hanson's logarithmic market scoring rule (LMSR) for n outcomes. Pure Python: no Django import.

Units. Money and shares cross this module's boundary as INTEGER micro-units (1 unit =
1_000_000 micro-units); a winning micro-share pays one micro-unit. The liquidity ``b`` is also
in micro-units, so ``q / b`` is dimensionless. Inside, the maths is done in floats.

Rounding. Every integer amount is rounded in the market maker's favour: what a trader PAYS is
rounded up to the micro-unit, what a trader RECEIVES (shares bought with an amount, proceeds of
a sale) is rounded down. Before rounding, the float result is pushed by a bound on its own
floating-point error, so the rounding direction holds against the exact real-number value too
(a computed 12.999999999 whose true value is 13.000000001 is charged 14, not 13).

Stability. Costs and prices are computed with the largest ``q_i`` subtracted first (log-sum-exp),
so ``q / b`` of 1e6 or more neither overflows nor turns into NaN; trade costs use
``b * log1p(p_i * expm1(delta / b))`` rather than ``C(q + delta) - C(q)``, which loses every
significant digit for a small trade at a large ``q``.

Formulas (``p = softmax(q / b)``):

- ``C(q) = b * ln sum_j exp(q_j / b)``; the maker's worst-case loss is ``C(0) = b * ln n``;
- buying ``delta`` shares of outcome ``i`` costs ``b * ln(1 + p_i * (exp(delta / b) - 1))``
  (negative ``delta`` sells, and the cost is then negative: the proceeds);
- spending ``c`` on outcome ``i`` buys ``b * ln(1 + (exp(c / b) - 1) / p_i)`` shares.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "MICRO",
    "Quote",
    "SlippageError",
    "check_slippage",
    "cost",
    "cost_of_trade",
    "liquidity_from_subsidy",
    "maker_loss_bound",
    "payout_at_resolution",
    "prices",
    "quote_buy_amount",
    "quote_buy_shares",
    "quote_sell_shares",
    "shares_for_amount",
]

MICRO = 1_000_000
"""Micro-units per unit of money (and micro-shares per share)."""

_EPS = 2.0**-52
# Above this, exp() overflows (exp(709.78) is the largest finite double) and below its negative
# exp() is subnormal: the branches below switch to log space there.
_EXP_SAFE = 700.0
# Integers beyond this cannot be converted to floats safely (1e308 is the largest double).
_MAX_SHARES = 10**300


class SlippageError(ValueError):
    """A quote breaks a trader's limit (price, minimum shares, maximum cost)."""


@dataclass(frozen=True)
class Quote:
    """One trade priced in integer micro-units.

    ``cost`` is what the trader pays: positive for a buy, negative for a sale (``-cost`` is the
    proceeds). ``average_price`` is ``|cost| / shares`` (units per share, the same ratio as
    micro-units per micro-share). Prices are market probabilities before and after the trade.
    """

    outcome: int
    shares: int
    cost: int
    average_price: float
    price_before: float
    price_after: float
    prices_after: list[float]
    side: Literal["buy", "sell"] = "buy"

    @property
    def proceeds(self) -> int:
        """Money the trader receives (0 for a buy)."""
        return max(-self.cost, 0)


# --------------------------------------------------------------------------------------------
# validation


def _check_liquidity(b: float) -> float:
    if isinstance(b, bool) or not isinstance(b, numbers.Real):
        raise ValueError(f"liquidity b must be a number, got {b!r}")
    b = float(b)
    if not (math.isfinite(b) and b > 0):
        raise ValueError(f"liquidity b must be a finite number > 0, got {b!r}")
    return b


def _check_state(q: Sequence[float]) -> list[int | float]:
    """Outstanding shares as Python numbers; integers stay ints so that ``q_j - max(q)`` is exact."""
    try:
        values = list(q)
    except TypeError:
        raise ValueError(f"q must be a sequence of outstanding shares, got {q!r}") from None
    if len(values) < 2:
        raise ValueError(f"a market needs at least 2 outcomes, got {len(values)}")
    out: list[int | float] = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise ValueError(f"outstanding shares must be numbers, got {v!r}")
        if isinstance(v, numbers.Integral):
            if abs(int(v)) > _MAX_SHARES:
                raise ValueError(f"outstanding shares must be at most {_MAX_SHARES:.0e} in size, got {v!r}")
            out.append(int(v))
        else:
            f = float(v)
            if not math.isfinite(f):
                raise ValueError(f"outstanding shares must be finite, got {v!r}")
            out.append(f)
    return out


def _check_outcome(outcome: int, n: int) -> int:
    if isinstance(outcome, bool) or not isinstance(outcome, numbers.Integral):
        raise ValueError(f"outcome must be an integer index, got {outcome!r}")
    outcome = int(outcome)
    if not 0 <= outcome < n:
        raise ValueError(f"outcome {outcome} is out of range for a market with {n} outcomes")
    return outcome


def _check_positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be a positive integer number of micro-units, got {value!r}")
    value = int(value)
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer number of micro-units, got {value}")
    return value


def _check_finite(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    f = float(value)
    if not math.isfinite(f):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return f


# --------------------------------------------------------------------------------------------
# stable building blocks


def _softplus(t: float) -> float:
    """ln(1 + e^t) without overflow for large t or lost digits for very negative t."""
    return t + math.log1p(math.exp(-t)) if t > 0 else math.log1p(math.exp(t))


def _log_expm1(x: float) -> float:
    """ln(e^x - 1) for x > 0, without overflow for large x."""
    return x + math.log1p(-math.exp(-x)) if x > 50 else math.log(math.expm1(x))


def _logaddexp(a: float, c: float) -> float:
    hi, lo = (a, c) if a >= c else (c, a)
    if hi == -math.inf:
        return -math.inf
    return hi + math.log1p(math.exp(lo - hi))


def _shifted(q: list[int | float], b: float) -> tuple[list[float], float]:
    """``d_j = (q_j - max q) / b`` (all <= 0, the largest exactly 0) and ``ln sum_j exp(d_j)``.

    The max is subtracted in share units before dividing by b: exact for integer q, and the
    exponentials can neither overflow nor all underflow (the largest is exp(0) = 1).
    """
    top = max(q)
    d = [(qj - top) / b for qj in q]
    return d, math.log(math.fsum(math.exp(dj) for dj in d))


@dataclass(frozen=True)
class _Outcome:
    """Log-space facts about one outcome of one market state, shared by the trade formulas."""

    b: float
    n: int
    log_p: float  # ln p_i
    log_1mp: float  # ln(1 - p_i), accurate even when p_i is within 1e-16 of 1

    @property
    def p(self) -> float:
        return math.exp(self.log_p)

    @property
    def ulps(self) -> float:
        """A few ulps per rounding, for the n-term sums and the handful of operations after them."""
        return _EPS * (8 + 2 * self.n)


def _outcome_state(q: list[int | float], b: float, i: int) -> _Outcome:
    d, lse = _shifted(q, b)
    log_p = d[i] - lse
    if log_p < -math.log(2):
        log_1mp = math.log1p(-math.exp(log_p))
    else:
        # 1 - p_i as the sum of the other prices: no cancellation when p_i is close to 1.
        others = [dj for j, dj in enumerate(d) if j != i]
        top = max(others)
        log_1mp = top + math.log(math.fsum(math.exp(dj - top) for dj in others)) - lse
    return _Outcome(b=b, n=len(q), log_p=log_p, log_1mp=log_1mp)


def _trade_log_factor(s: _Outcome, x: float) -> tuple[float, float]:
    """``L = ln(1 + p (e^x - 1))`` (the cost of buying ``x * b`` shares, in units of b) and a bound
    on its absolute float error.

    ``ln p``, ``ln(1 - p)`` and ``x`` are each wrong by a few ulps of their own magnitude (``ln p``
    inherits the rounding of ``(q_i - max q) / b``); each error reaches L multiplied by the
    sensitivity of L to that input (all at most 2), which is what the weights below are.
    """
    if x == 0:
        return 0.0, 0.0
    lp, l1 = s.log_p, s.log_1mp
    if x > 0:
        if x < _EXP_SAFE and lp > -_EXP_SAFE:
            y = s.p * math.expm1(x)
            value = math.log1p(y)  # log1p is well conditioned for y > 0
            w_p, w_x = y / (1 + y), (y + s.p) / (1 + y)
            return value, s.ulps * (w_p * (1 + abs(lp)) + w_x * (1 + abs(x)))
        # e^x would overflow, or p is subnormal: ln(1 + e^t) with t = ln(p (e^x - 1)).
        t = lp + _log_expm1(x)
        value = _softplus(t)
        return value, s.ulps * math.exp(t - value) * (1 + abs(lp) + abs(x) + abs(t))
    y = s.p * math.expm1(x)  # in (-p, 0]
    if y >= -0.5:
        w_p, w_x = -y / (1 + y), (y + s.p) / (1 + y)
        return math.log1p(y), s.ulps * (w_p * (1 + abs(lp)) + w_x * (1 + abs(x)))
    # 1 + y = (1 - p) + p e^x is small: add the two terms in log space instead of cancelling 1 - p.
    value = _logaddexp(l1, lp + x)
    w_x, w_1 = math.exp(lp + x - value), math.exp(l1 - value)
    return value, s.ulps * (w_x * (1 + abs(lp) + abs(x)) + w_1 * (1 + abs(l1)))


def _ratio(amount: float, b: float) -> float:
    """``amount / b``, refusing amounts so large that it overflows."""
    try:
        return _finite(amount / b)
    except OverflowError:
        raise ValueError(f"the trade is too large to price with b = {b!r}") from None


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("the trade is too large to price: the result overflows")
    return value


def _trade(q: list[int | float], b: float, i: int, shares: float) -> tuple[float, float]:
    """(cost of the trade, bound on its absolute float error), both in micro-units."""
    s = _outcome_state(q, b, i)
    log_factor, error = _trade_log_factor(s, _ratio(shares, b))
    value = _finite(b * log_factor)
    # 1e-300: a ln-factor below the normal range has lost its relative precision (absolute error < 1e-307).
    error = b * (error + 1e-300) + 4 * _EPS * abs(value)
    _finite(abs(value) + error)  # the guarded amount is rounded to an int, so it must be finite too
    return value, error


# --------------------------------------------------------------------------------------------
# float API


def liquidity_from_subsidy(subsidy_micro: int, n_outcomes: int) -> float:
    """Liquidity ``b = subsidy / ln n`` in micro-units, so the subsidy is the maker's worst-case loss."""
    subsidy_micro = _check_positive_int(subsidy_micro, "subsidy")
    if isinstance(n_outcomes, bool) or not isinstance(n_outcomes, numbers.Integral) or n_outcomes < 2:
        raise ValueError(f"a market needs an integer number of outcomes >= 2, got {n_outcomes!r}")
    return subsidy_micro / math.log(int(n_outcomes))


def cost(q: Sequence[float], b: float) -> float:
    """Cost function ``C(q) = b ln sum_j exp(q_j / b)``, as ``max q + b ln sum_j exp((q_j - max q) / b)``.

    Computed around the largest q so it neither overflows nor loses the large part of the value.
    """
    qs, b = _check_state(q), _check_liquidity(b)
    _, lse = _shifted(qs, b)
    return max(qs) + b * lse


def prices(q: Sequence[float], b: float) -> list[float]:
    """Instantaneous prices ``softmax(q / b)``, which sum to 1 (up to float rounding).

    Stable for any q; a price below about 1e-308 (an outcome more than ~709 b shares behind the
    leader) cannot be represented and comes out as 0.0, and the leader's then as 1.0.
    """
    qs, b = _check_state(q), _check_liquidity(b)
    d, _ = _shifted(qs, b)
    e = [math.exp(dj) for dj in d]
    total = math.fsum(e)
    return [ej / total for ej in e]


def cost_of_trade(q: Sequence[float], b: float, outcome: int, shares: float) -> float:
    """``C(q + shares e_i) - C(q)`` in micro-units, unrounded; negative for a sale (the proceeds).

    Computed as ``b log1p(p_i expm1(shares / b))``, not as a difference of two costs, which
    cancels catastrophically for a small trade at large q.
    """
    qs, b = _check_state(q), _check_liquidity(b)
    i = _check_outcome(outcome, len(qs))
    return _trade(qs, b, i, _check_finite(shares, "shares"))[0]


def shares_for_amount(q: Sequence[float], b: float, outcome: int, amount: float) -> float:
    """Shares of ``outcome`` that ``amount`` micro-units buy, unrounded: the inverse of :func:`cost_of_trade`.

    ``b log1p(expm1(amount / b) / p_i)``, in log space where ``exp`` would overflow. A negative
    amount asks how many shares to sell to receive ``-amount``; a sale can never raise
    ``-b ln(1 - p_i)`` or more, and asking for that raises ``ValueError``.
    """
    qs, b = _check_state(q), _check_liquidity(b)
    i = _check_outcome(outcome, len(qs))
    amount = _check_finite(amount, "amount")
    if amount == 0:
        return 0.0
    s = _outcome_state(qs, b, i)
    x = _ratio(amount, b)
    if x > 0:
        u = _log_expm1(x) - s.log_p  # ln(expm1(x) / p)
        if u < _EXP_SAFE and s.log_p > -_EXP_SAFE and x < _EXP_SAFE:
            return b * math.log1p(math.expm1(x) / s.p)
        return _finite(b * _softplus(u))
    if x <= s.log_1mp:  # the supremum of what a sale can raise (reached only by selling infinitely many)
        raise ValueError(f"selling outcome {i} can raise less than {-b * s.log_1mp:.6g} micro-units, not {-amount:.6g}")
    # y = expm1(x) / p, without dividing by a subnormal p
    y = math.expm1(x) / s.p if s.log_p > -_EXP_SAFE else -math.exp(math.log(-math.expm1(x)) - s.log_p)
    if y >= -0.5:
        return b * math.log1p(y)
    # 1 + y = (e^x - (1 - p)) / p is small: take it apart in log space.
    return b * (x + math.log(-math.expm1(s.log_1mp - x)) - s.log_p)


# --------------------------------------------------------------------------------------------
# integer quotes


def _pay(value: float, error: float) -> int:
    """Round the (positive) price of a purchase UP, after allowing for the float error of ``value``.

    Never below 1: the exact cost of buying is > 0 even where its float underflows to 0.
    """
    return max(math.ceil(value + error), 1)


def _receive(value: float, error: float) -> int:
    """Round an amount the trader receives DOWN, after allowing for the float error of ``value``."""
    return max(math.floor(value - error), 0)


def _quote(qs: list[int | float], b: float, i: int, side: Literal["buy", "sell"], shares: int, paid: int) -> Quote:
    after = list(qs)
    after[i] += shares if side == "buy" else -shares
    before_prices = prices(qs, b)
    after_prices = prices(after, b)
    return Quote(
        outcome=i,
        shares=shares,
        cost=paid,
        average_price=abs(paid) / shares,
        price_before=before_prices[i],
        price_after=after_prices[i],
        prices_after=after_prices,
        side=side,
    )


def quote_buy_shares(q: Sequence[float], b: float, outcome: int, shares: int) -> Quote:
    """Price buying exactly ``shares`` micro-shares; the cost is rounded UP to the micro-unit (>= 1)."""
    qs, b = _check_state(q), _check_liquidity(b)
    i = _check_outcome(outcome, len(qs))
    shares = _check_positive_int(shares, "shares")
    return _quote(qs, b, i, "buy", shares, _pay(*_trade(qs, b, i, shares)))


def quote_buy_amount(q: Sequence[float], b: float, outcome: int, amount: int) -> Quote:
    """Price spending at most ``amount`` micro-units: shares rounded DOWN, their cost rounded UP.

    The quote's ``cost`` is never more than ``amount`` (it is usually a little less: the change
    stays with the trader). Raises ``ValueError`` if the amount buys no whole micro-share.
    """
    qs, b = _check_state(q), _check_liquidity(b)
    i = _check_outcome(outcome, len(qs))
    amount = _check_positive_int(amount, "amount")

    def price_of(n: int) -> int:
        return _pay(*_trade(qs, b, i, n))

    shares = math.floor(shares_for_amount(qs, b, i, amount))
    paid = price_of(shares) if shares > 0 else 0
    if paid > amount:
        # The float inverse was a hair optimistic, or the error allowance tipped the rounded cost
        # over: find the largest affordable whole number of shares (cost is increasing in shares).
        lo, hi = 0, shares - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if price_of(mid) <= amount:
                lo = mid
            else:
                hi = mid - 1
        shares = lo
        paid = price_of(shares) if shares > 0 else 0
    if shares <= 0:
        raise ValueError(f"{amount} micro-units do not buy a single micro-share of outcome {i}")
    assert paid <= amount, "quote_buy_amount must never charge more than the amount"
    return _quote(qs, b, i, "buy", shares, paid)


def quote_sell_shares(q: Sequence[float], b: float, outcome: int, shares: int) -> Quote:
    """Price selling ``shares`` micro-shares back to the maker; proceeds rounded DOWN, ``cost = -proceeds``.

    Whether the trader holds the shares is the caller's business.
    """
    qs, b = _check_state(q), _check_liquidity(b)
    i = _check_outcome(outcome, len(qs))
    shares = _check_positive_int(shares, "shares")
    value, error = _trade(qs, b, i, -shares)
    return _quote(qs, b, i, "sell", shares, -_receive(-value, error))


def check_slippage(
    quote: Quote,
    *,
    limit_price: float | None = None,
    min_shares: int | None = None,
    max_cost: int | None = None,
    min_proceeds: int | None = None,
) -> None:
    """Raise :class:`SlippageError` if the quote breaks any limit the trader gave.

    ``limit_price`` caps a buy's average price and floors a sale's; ``min_shares`` is the fewest
    shares the trader accepts; ``max_cost`` the most the trader pays (for a sale ``cost`` is
    negative, so ``max_cost=-x`` means "at least x back", as does ``min_proceeds=x``).
    """
    if limit_price is not None:
        limit = _check_finite(limit_price, "limit_price")
        if limit < 0:
            raise ValueError(f"limit_price must be >= 0, got {limit_price!r}")
        if quote.side == "buy" and quote.average_price > limit:
            raise SlippageError(f"average price {quote.average_price:.6f} is above the limit price {limit:.6f}")
        if quote.side == "sell" and quote.average_price < limit:
            raise SlippageError(f"average price {quote.average_price:.6f} is below the limit price {limit:.6f}")
    if min_shares is not None and quote.shares < min_shares:
        raise SlippageError(f"the trade gives {quote.shares} micro-shares, fewer than the minimum {min_shares}")
    if max_cost is not None and quote.cost > max_cost:
        raise SlippageError(f"the trade costs {quote.cost} micro-units, more than the maximum {max_cost}")
    if min_proceeds is not None and quote.proceeds < min_proceeds:
        raise SlippageError(f"the sale pays {quote.proceeds} micro-units, less than the minimum {min_proceeds}")


# --------------------------------------------------------------------------------------------
# resolution and bounds


def maker_loss_bound(b: float, n_outcomes: int) -> int:
    """The maker's worst-case loss ``b ln n`` in whole micro-units, rounded up.

    For ``b = liquidity_from_subsidy(S, n)`` this is exactly ``S`` (float noise within 1e-9 of an
    integer is treated as that integer rather than rounded up to ``S + 1``).
    """
    b = _check_liquidity(b)
    if isinstance(n_outcomes, bool) or not isinstance(n_outcomes, numbers.Integral) or n_outcomes < 2:
        raise ValueError(f"a market needs an integer number of outcomes >= 2, got {n_outcomes!r}")
    bound = b * math.log(int(n_outcomes))
    nearest = round(bound)
    if abs(bound - nearest) <= 1e-9 * max(1.0, bound):
        return int(nearest)
    return math.ceil(bound)


def payout_at_resolution(q: Sequence[int], outcome: int) -> int:
    """Micro-units the maker pays out when ``outcome`` wins: one per outstanding winning micro-share."""
    qs = _check_state(q)
    i = _check_outcome(outcome, len(qs))
    winning = qs[i]
    if not (isinstance(winning, int) or winning.is_integer()) or winning < 0:
        raise ValueError(f"outstanding shares of the winning outcome must be a whole number >= 0, got {winning!r}")
    return int(winning)
