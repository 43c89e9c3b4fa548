"""The LMSR market maker: hand-computed cases, exactness against 50-digit decimals, and the
money invariants (no round-trip profit, maker's loss bounded by the subsidy). No database."""

import math
from decimal import Decimal, localcontext

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from market import lmsr

MICRO = 1_000_000  # the documented unit (the module's own constant is checked against it below)
EPS = 2.0**-52  # a double's unit roundoff, twice over
SETTINGS = settings(max_examples=80, deadline=None)


# --------------------------------------------------------------------------------------------
# exact reference and strategies


def _dec(x) -> Decimal:
    return Decimal(x)  # exact for ints and floats


def ref_cost(q, b, prec=50) -> Decimal:
    """C(q) to ``prec`` significant digits (the float b taken as exact)."""
    with localcontext() as ctx:
        ctx.prec = prec
        ctx.Emin, ctx.Emax = -(10**15), 10**15
        big_b = _dec(b)
        top = max(_dec(v) for v in q)
        total = sum(((_dec(v) - top) / big_b).exp() for v in q)
        return top + big_b * total.ln()


def ref_trade(q, b, outcome, shares) -> Decimal:
    """C(q + shares e_i) - C(q) to at least 40 significant digits: the costs are computed with
    enough digits that their difference (however much smaller than they are) keeps 40."""
    after = [_dec(v) for v in q]
    after[outcome] += _dec(shares)
    prec = 60
    while prec < 20_000:
        before_cost, after_cost = ref_cost(q, b, prec), ref_cost(after, b, prec)
        with localcontext() as ctx:
            ctx.prec = prec
            ctx.Emin, ctx.Emax = -(10**15), 10**15
            diff = after_cost - before_cost
        if diff == 0:
            prec *= 4
            continue
        lost = max(before_cost.copy_abs(), after_cost.copy_abs()).adjusted() - diff.adjusted()
        if lost + 40 <= prec:
            return diff
        prec = lost + 60
    raise AssertionError("reference needs too many digits")


@st.composite
def markets(draw, *, spread=50.0, max_outcomes=5, offset=0.0):
    """(q, b): integer outstanding micro-shares; outcomes differ by up to ``spread * b``, all
    shifted up by up to ``offset * b`` (large q with ordinary prices)."""
    n = draw(st.integers(2, max_outcomes))
    subsidy = draw(st.integers(1_000, 10**12))
    b = lmsr.liquidity_from_subsidy(subsidy, n)
    base = draw(st.floats(0, offset)) if offset else 0.0
    q = [int(b * (base + draw(st.floats(0, spread)))) for _ in range(n)]
    return q, b


def ref_shares_for_amount(q, b, outcome, amount, prec=60) -> Decimal:
    """b ln(1 + (e^(amount/b) - 1) / p_i), the float inputs taken as exact, to ``prec`` digits."""
    with localcontext() as ctx:
        ctx.prec = prec
        ctx.Emin, ctx.Emax = -(10**15), 10**15
        big_b = _dec(b)
        top = max(_dec(v) for v in q)
        weights = [((_dec(v) - top) / big_b).exp() for v in q]
        p = weights[outcome] / sum(weights)
        return big_b * (1 + ((_dec(amount) / big_b).exp() - 1) / p).ln()


def sizes(b, max_ratio=20.0):
    """Trade sizes in micro-shares (or micro-units) from 1 to ``max_ratio * b``."""
    top = max(1, int(b * max_ratio))
    return st.one_of(st.integers(1, 1_000), st.integers(1, top))


# --------------------------------------------------------------------------------------------
# hand-computed cases


class TestHandComputed:
    def test_the_unit_is_a_millionth(self):
        assert lmsr.MICRO == 1_000_000

    def test_liquidity_makes_the_subsidy_the_worst_case_loss(self):
        b = lmsr.liquidity_from_subsidy(100 * MICRO, 2)
        assert b == pytest.approx(100 * MICRO / math.log(2))
        assert lmsr.cost([0, 0], b) == pytest.approx(100 * MICRO)
        assert lmsr.maker_loss_bound(b, 2) == 100 * MICRO
        for n in (2, 3, 7):
            for subsidy in (1, 999, 10**6, 123_456_789_012):
                assert lmsr.maker_loss_bound(lmsr.liquidity_from_subsidy(subsidy, n), n) == subsidy

    @pytest.mark.parametrize("n", [2, 3, 5])
    def test_fresh_market_prices_are_uniform(self, n):
        assert lmsr.prices([0] * n, 1000.0) == pytest.approx([1 / n] * n)
        assert lmsr.cost([0] * n, 1000.0) == pytest.approx(1000.0 * math.log(n))

    @pytest.mark.parametrize("x", [1, 1_000, 10**6, 5 * 10**7, 10**9])
    def test_fresh_binary_cost_of_buying(self, x):
        b = 100 * MICRO
        with localcontext() as ctx:
            ctx.prec = 60
            exact = b * ((1 + (Decimal(x) / b).exp()) / 2).ln()  # b ln((1 + e^(x/b)) / 2)
        assert lmsr.cost_of_trade([0, 0], b, 0, x) == pytest.approx(float(exact), rel=1e-13)
        assert lmsr.quote_buy_shares([0, 0], b, 1, x).cost == math.ceil(exact)
        assert lmsr.quote_sell_shares([x, 0], b, 0, x).proceeds == math.floor(exact)

    def test_textbook_numbers(self):
        # b = 100 units: buying 100 shares of a fresh binary market costs 100 ln((1 + e) / 2) = 62.01145069... units.
        b = 100 * MICRO
        quote = lmsr.quote_buy_shares([0, 0], b, 0, 100 * MICRO)
        assert quote.cost == 62_011_451  # rounded up
        assert quote.average_price == pytest.approx(0.62011451)
        assert quote.price_before == 0.5
        assert quote.price_after == pytest.approx(math.e / (1 + math.e))
        assert quote.prices_after == pytest.approx([math.e / (1 + math.e), 1 / (1 + math.e)])
        sale = lmsr.quote_sell_shares([100 * MICRO, 0], b, 0, 100 * MICRO)
        assert sale.cost == -62_011_450  # rounded down
        assert sale.proceeds == 62_011_450
        assert sale.side == "sell"
        assert sale.prices_after == [0.5, 0.5]

    def test_spending_on_a_fresh_binary_market(self):
        b, c = 100 * MICRO, 30 * MICRO
        expected = b * math.log(2 * math.exp(c / b) - 1)  # solves b ln((1 + e^(x/b)) / 2) = c
        assert lmsr.shares_for_amount([0, 0], b, 0, c) == pytest.approx(expected, rel=1e-13)
        quote = lmsr.quote_buy_amount([0, 0], b, 0, c)
        assert quote.shares == math.floor(expected)
        assert quote.cost <= c

    def test_selling_returns_the_purchase_price_minus_rounding(self):
        b = lmsr.liquidity_from_subsidy(100 * MICRO, 2)
        buy = lmsr.quote_buy_shares([0, 0], b, 0, MICRO)
        sell = lmsr.quote_sell_shares([MICRO, 0], b, 0, MICRO)
        assert buy.cost == 500_867 and sell.proceeds == 500_866

    def test_a_micro_share_always_costs_at_least_a_micro_unit(self):
        # The price of outcome 0 is about e^-1000: the exact cost underflows, the charge does not.
        b = 1_000.0
        quote = lmsr.quote_buy_shares([0, 10**6], b, 0, 1)
        assert quote.cost == 1
        assert quote.price_before == 0.0  # not representable as a double

    def test_small_trade_at_huge_q_is_exact(self):
        b = 1e6
        q = [10**15, 10**15 + 3 * 10**5, 10**15 - 10**6]
        naive = lmsr.cost([q[0] + 1, *q[1:]], b) - lmsr.cost(q, b)
        stable = lmsr.cost_of_trade(q, b, 0, 1)
        exact = float(ref_trade(q, b, 0, 1))
        assert stable == pytest.approx(exact, rel=1e-12)
        assert abs(naive - exact) > 1e-3  # the textbook difference has lost most of its digits

    def test_accepts_numpy_and_float_states(self):
        b = 1e6
        assert lmsr.prices(np.array([0, 10**6]), b) == pytest.approx(lmsr.prices([0, 10**6], b))
        assert lmsr.cost_of_trade(np.array([0.0, 1e6]), b, np.int64(0), 5.0) == pytest.approx(
            lmsr.cost_of_trade([0, 10**6], b, 0, 5)
        )
        assert lmsr.quote_buy_shares(np.array([0, 10**6]), b, 1, np.int64(10)).shares == 10

    def test_payout(self):
        assert lmsr.payout_at_resolution([5 * MICRO, 2 * MICRO, 0], 1) == 2 * MICRO
        assert lmsr.payout_at_resolution([5, 2, 0], 2) == 0
        with pytest.raises(ValueError, match="whole number"):
            lmsr.payout_at_resolution([5.5, 1], 0)
        with pytest.raises(ValueError, match=r"^outstanding shares of the winning outcome must be .* got -3$"):
            lmsr.payout_at_resolution([-3, 1], 0)
        # a whole number of shares held as a float pays as that integer
        assert lmsr.payout_at_resolution([2.0, 1.5], 0) == 2 and type(lmsr.payout_at_resolution([2.0, 1], 0)) is int

    def test_maker_loss_bound_rounds_up_except_float_noise(self):
        ln2 = math.log(2)
        # b ln 2 = 100.4: the maker may lose 100.4 micro-units, so the bound is 101 (not the nearest, 100)
        assert lmsr.maker_loss_bound(100.4 / ln2, 2) == 101
        assert lmsr.maker_loss_bound(100.6 / ln2, 2) == 101
        # within 1e-9 (relative, or absolute below 1) of an integer: that integer, either side
        assert lmsr.maker_loss_bound((10**6 + 5e-4) / ln2, 2) == 10**6  # 5e-10 relative
        assert lmsr.maker_loss_bound((10**6 - 5e-4) / ln2, 2) == 10**6
        assert lmsr.maker_loss_bound((10**6 + 2e-3) / ln2, 2) == 10**6 + 1  # 2e-9 relative: real, rounded up
        assert lmsr.maker_loss_bound((1 + 0.5e-9) / ln2, 2) == 1
        assert lmsr.maker_loss_bound((1 + 1.5e-9) / ln2, 2) == 2  # the absolute 1e-9 below a bound of 1
        assert lmsr.maker_loss_bound((0.5 + 1.5e-9) / ln2, 2) == 1
        assert lmsr.maker_loss_bound(1000.0, 3) == math.ceil(1000 * math.log(3))  # 1098.6... -> 1099

    def test_outstanding_shares_up_to_1e300_are_a_market(self):
        assert lmsr.prices([10**300, 0], 1e6) == [1.0, 0.0]
        assert lmsr.prices([0, -(10**300)], 1e6) == [1.0, 0.0]

    def test_a_trade_of_nothing_costs_nothing(self):
        assert lmsr.cost_of_trade([3 * MICRO, 0], 1e6, 0, 0) == 0.0
        assert lmsr.shares_for_amount([3 * MICRO, 0], 1e6, 0, 0) == 0.0

    def test_quotes_name_their_outcome_and_side(self):
        b = 100 * MICRO
        for i in (0, 1, 2):
            assert lmsr.quote_buy_shares([0, 0, 0], b, i, MICRO).outcome == i
            assert lmsr.quote_buy_amount([0, 0, 0], b, i, MICRO).outcome == i
            assert lmsr.quote_sell_shares([MICRO] * 3, b, i, MICRO).outcome == i
        quote = lmsr.quote_buy_amount([0, 0], b, 1, 30 * MICRO)
        assert quote.side == "buy" and quote.proceeds == 0
        assert quote.price_before == 0.5 and quote.price_after > 0.5  # the price moved up: shares were bought
        assert quote.prices_after == pytest.approx(lmsr.prices([0, quote.shares], b), abs=1e-15)

    def test_spending_on_a_near_certain_outcome_takes_the_largest_affordable_number_of_shares(self):
        # Outcome 0 is 40 b ahead: its price is 1 - 4e-18, so n micro-shares cost n less 4e-18 n micro-units.
        # The float allowance (~3e-9 micro-units) lifts the charge for n shares to n + 1, so an amount n buys
        # n - 1 shares for n: the largest number it affords (n shares would cost n + 1). The inverse's
        # first guess (n shares) is over budget here, and the search below it must land exactly on n - 1.
        b = 1e6
        q = [40 * MICRO, 0]
        for amount in (2, 10, 1000, 123_457):
            assert lmsr.quote_buy_shares(q, b, 0, amount).cost == amount + 1
            assert lmsr.quote_buy_shares(q, b, 0, amount - 1).cost == amount
            quote = lmsr.quote_buy_amount(q, b, 0, amount)
            assert (quote.shares, quote.cost, quote.side) == (amount - 1, amount, "buy")
        with pytest.raises(ValueError, match=r"^1 micro-units do not buy a single micro-share of outcome 0$"):
            lmsr.quote_buy_amount(q, b, 0, 1)

    def test_where_the_allowance_is_several_micro_units_the_search_goes_down_to_the_last_affordable_share(self):
        # b = 1e15: the float allowance is about 2.7 micro-units, so n shares of a near-certain outcome are
        # charged n + 3 and an amount n buys n - 3 shares: several guesses below the inverse's are over budget.
        b = 1e15
        q = [40 * 10**15, 0]
        for amount in (10, 1000, 123_457):
            quote = lmsr.quote_buy_amount(q, b, 0, amount)
            assert (quote.shares, quote.cost) == (amount - 3, amount)
            assert lmsr.quote_buy_shares(q, b, 0, quote.shares + 1).cost > amount  # the largest affordable

    def test_the_most_a_sale_can_raise_is_named_in_the_refusal(self):
        # a fresh binary market at b = 1e6: selling outcome 0 raises less than b ln 2 = 693147.18 micro-units
        with pytest.raises(ValueError, match=r"^selling outcome 0 can raise less than 693147 micro-units, not 700000$"):
            lmsr.shares_for_amount([0, 0], 1e6, 0, -700_000.0)
        with pytest.raises(ValueError, match=r"^selling outcome 0 can raise less than 693147 micro-units, not 693147$"):
            lmsr.shares_for_amount([0, 0], 1e6, 0, -693_147.2)


class TestValidation:
    @pytest.mark.parametrize(
        ("call", "message"),
        [
            (lambda: lmsr.prices([1], 10.0), "at least 2 outcomes"),
            (lambda: lmsr.prices([0, float("nan")], 10.0), "finite"),
            (lambda: lmsr.prices([0, True], 10.0), "numbers"),
            (lambda: lmsr.cost([0, 0], 0.0), "b must be"),
            (lambda: lmsr.cost([0, 0], -1.0), "b must be"),
            (lambda: lmsr.cost([0, 0], float("inf")), "b must be"),
            (lambda: lmsr.cost_of_trade([0, 0], 10.0, 2, 1), "out of range"),
            (lambda: lmsr.cost_of_trade([0, 0], 10.0, -1, 1), "out of range"),
            (lambda: lmsr.cost_of_trade([0, 0], 10.0, True, 1), "integer index"),
            (lambda: lmsr.cost_of_trade([0, 0], 10.0, 0, float("inf")), "finite"),
            (lambda: lmsr.quote_buy_shares([0, 0], 10.0, 0, 0), "positive integer"),
            (lambda: lmsr.quote_buy_shares([0, 0], 10.0, 0, -5), "positive integer"),
            (lambda: lmsr.quote_buy_shares([0, 0], 10.0, 0, 1.0), "positive integer"),
            (lambda: lmsr.quote_buy_shares([0, 0], 10.0, 0, True), "positive integer"),
            (lambda: lmsr.quote_buy_amount([0, 0], 10.0, 0, 0), "positive integer"),
            (lambda: lmsr.quote_sell_shares([5, 0], 10.0, 0, False), "positive integer"),
            (lambda: lmsr.quote_sell_shares([5, 0], 10.0, 3, 1), "out of range"),
            (lambda: lmsr.liquidity_from_subsidy(10**6, 1), "outcomes >= 2"),
            (lambda: lmsr.liquidity_from_subsidy(0, 2), "positive integer"),
            (lambda: lmsr.shares_for_amount([0, 0], 1000.0, 0, -1000.0), "can raise less than"),
            # each refusal names what was wrong
            (lambda: lmsr.prices(5, 10.0), "^q must be a sequence of outstanding shares, got 5$"),
            (lambda: lmsr.prices([0, "1"], 10.0), "^outstanding shares must be numbers, got '1'$"),
            (lambda: lmsr.cost([0, 0], "10"), "^liquidity b must be a number, got '10'$"),
            (lambda: lmsr.cost([0, 0], True), "^liquidity b must be a number, got True$"),
            (lambda: lmsr.cost([0, 0], 0.0), r"^liquidity b must be a finite number > 0, got 0\.0$"),
            (lambda: lmsr.prices([10**300 + 1, 0], 1e6), "^outstanding shares must be at most 1e\\+300 in size"),
            (lambda: lmsr.prices([0, -(10**300) - 1], 1e6), "must be at most 1e\\+300 in size"),
            (lambda: lmsr.cost_of_trade([0, 0], 10.0, 0, float("inf")), "^shares must be finite, got inf$"),
            (lambda: lmsr.cost_of_trade([0, 0], 10.0, 0, "5"), "^shares must be a number, got '5'$"),
            (lambda: lmsr.cost_of_trade([0, 0], 10.0, 0, True), "^shares must be a number, got True$"),
            (lambda: lmsr.shares_for_amount([0, 0], 10.0, 0, float("nan")), "^amount must be finite, got nan$"),
            (lambda: lmsr.shares_for_amount([0, 0], 10.0, 0, "5"), "^amount must be a number, got '5'$"),
            (lambda: lmsr.quote_buy_shares([0, 0], 10.0, 0, 0), "^shares must be a positive integer number"),
            (lambda: lmsr.quote_sell_shares([5, 0], 10.0, 0, -1), "^shares must be a positive integer number"),
            (lambda: lmsr.quote_buy_amount([0, 0], 10.0, 0, 0), "^amount must be a positive integer number"),
            (lambda: lmsr.quote_buy_amount([0, 0], 10.0, 0, 2.5), "^amount must be a positive integer number"),
            (lambda: lmsr.liquidity_from_subsidy(0, 2), "^subsidy must be a positive integer number"),
            (lambda: lmsr.liquidity_from_subsidy(10**6, 3.0), "^a market needs an integer number of outcomes >= 2"),
            (lambda: lmsr.maker_loss_bound(1e6, 1), "^a market needs an integer number of outcomes >= 2, got 1$"),
            (lambda: lmsr.maker_loss_bound(1e6, 2.0), "^a market needs an integer number of outcomes >= 2, got 2.0$"),
            (lambda: lmsr.maker_loss_bound(1e6, True), "^a market needs an integer number of outcomes >= 2"),
            (
                lambda: lmsr.quote_buy_shares([0, 0], 1e6, 0, 10**400),
                "^the trade is too large to price with b = 1000000.0$",
            ),
            (
                lambda: lmsr.cost_of_trade([0, 0], 1e-300, 0, 1e10),  # shares / b overflows
                "^the trade is too large to price: the result overflows$",
            ),
        ],
    )
    def test_rejects(self, call, message):
        with pytest.raises(ValueError, match=message):
            call()


class TestSlippage:
    b = 100 * MICRO

    def test_buy_limits(self):
        quote = lmsr.quote_buy_shares([0, 0], self.b, 0, 100 * MICRO)  # average price 0.62011451
        lmsr.check_slippage(quote, limit_price=0.63, min_shares=100 * MICRO, max_cost=quote.cost)
        with pytest.raises(lmsr.SlippageError, match="above the limit price"):
            lmsr.check_slippage(quote, limit_price=0.62)
        with pytest.raises(lmsr.SlippageError, match="fewer than the minimum"):
            lmsr.check_slippage(quote, min_shares=100 * MICRO + 1)
        with pytest.raises(lmsr.SlippageError, match="more than the maximum"):
            lmsr.check_slippage(quote, max_cost=quote.cost - 1)

    def test_sell_limits(self):
        sale = lmsr.quote_sell_shares([100 * MICRO, 0], self.b, 0, 100 * MICRO)  # average 0.6201145
        lmsr.check_slippage(sale, limit_price=0.62, max_cost=-62 * MICRO, min_proceeds=62 * MICRO)
        with pytest.raises(lmsr.SlippageError, match="below the limit price"):
            lmsr.check_slippage(sale, limit_price=0.63)
        with pytest.raises(lmsr.SlippageError, match="more than the maximum"):
            lmsr.check_slippage(sale, max_cost=-63 * MICRO)
        with pytest.raises(lmsr.SlippageError, match="less than the minimum"):
            lmsr.check_slippage(sale, min_proceeds=63 * MICRO)

    def test_a_trade_exactly_at_a_limit_passes(self):
        quote = lmsr.quote_buy_shares([0, 0], self.b, 0, 100 * MICRO)
        assert quote.average_price == 62_011_451 / 100_000_000
        lmsr.check_slippage(quote, limit_price=62_011_451 / 100_000_000, min_shares=100 * MICRO, max_cost=62_011_451)
        sale = lmsr.quote_sell_shares([100 * MICRO, 0], self.b, 0, 100 * MICRO)
        assert sale.average_price == 62_011_450 / 100_000_000
        lmsr.check_slippage(sale, limit_price=62_011_450 / 100_000_000, max_cost=-62_011_450, min_proceeds=62_011_450)
        with pytest.raises(lmsr.SlippageError, match="above the limit price"):
            lmsr.check_slippage(quote, limit_price=62_011_450 / 100_000_000)
        with pytest.raises(lmsr.SlippageError, match="below the limit price"):
            lmsr.check_slippage(sale, limit_price=62_011_451 / 100_000_000)
        with pytest.raises(
            lmsr.SlippageError, match=r"^the sale pays 62011450 micro-units, less than the minimum 62011451$"
        ):
            lmsr.check_slippage(sale, min_proceeds=62_011_451)

    def test_a_limit_price_of_zero_is_a_limit_and_a_negative_or_missing_one_is_refused(self):
        sale = lmsr.quote_sell_shares([100 * MICRO, 0], self.b, 0, MICRO)
        lmsr.check_slippage(sale, limit_price=0)  # a seller who takes any price
        with pytest.raises(lmsr.SlippageError, match="above the limit price"):
            lmsr.check_slippage(lmsr.quote_buy_shares([0, 0], self.b, 0, MICRO), limit_price=0)
        with pytest.raises(ValueError, match=r"^limit_price must be >= 0, got -0\.1$"):
            lmsr.check_slippage(sale, limit_price=-0.1)
        with pytest.raises(ValueError, match=r"^limit_price must be finite, got nan$"):
            lmsr.check_slippage(sale, limit_price=float("nan"))
        with pytest.raises(ValueError, match=r"^limit_price must be a number, got '0.5'$"):
            lmsr.check_slippage(sale, limit_price="0.5")

    def test_slippage_error_is_a_value_error(self):
        assert issubclass(lmsr.SlippageError, ValueError)


class TestFloatErrorAllowance:
    """The allowance added before rounding is the first-order propagation of a few ulps
    (``2^-52 (8 + 2n)``) of error in each input of ``L = ln(1 + p (e^x - 1))`` (``ln p``, ``x``,
    ``ln(1 - p)``), each weighted by L's sensitivity to it, plus 4 ulps of the result's own rounding.
    Smaller, and the rounding could favour a trader against the exact maths (the 50-digit tests
    above); larger, and traders are overcharged by a micro-unit more often than the floats need.
    The derivatives here are written from the formula, independently of the module's branches."""

    @staticmethod
    def check(q, b, i, shares, log_factor, sensitivities):
        n = len(q)
        ulps = EPS * (8 + 2 * n)
        expected_error = b * (ulps * sum(w * (1 + size) for w, size in sensitivities) + 1e-300)
        expected_error += 4 * EPS * abs(b * log_factor)
        value, error = lmsr._trade(q, b, i, shares)
        assert value == pytest.approx(b * log_factor, rel=1e-13)
        assert error == pytest.approx(expected_error, rel=1e-9)

    def test_buying_at_an_ordinary_price(self):
        # fresh binary market: p = 1/2, x = 1
        p, x = 0.5, 1.0
        y = p * math.expm1(x)
        d_log_p, d_x = y / (1 + y), p * math.exp(x) / (1 + y)  # dL/d ln p, dL/dx
        self.check([0, 0], 1e6, 0, 1_000_000, math.log1p(y), [(d_log_p, math.log(2)), (d_x, x)])

    def test_selling_a_little(self):
        # p = 1/2, x = -0.3: 1 + y stays above 1/2
        p, x = 0.5, -0.3
        y = p * math.expm1(x)
        d_log_p, d_x = -y / (1 + y), p * math.exp(x) / (1 + y)
        self.check([300_000, 300_000], 1e6, 0, -300_000, math.log1p(y), [(d_log_p, math.log(2)), (d_x, abs(x))])

    def test_selling_most_of_what_can_be_raised(self):
        # q = (2b, 0): p = e^2 / (1 + e^2); x = -3: L = ln((1 - p) + p e^x), small, taken in log space
        b = 1e6
        p = math.exp(2) / (1 + math.exp(2))
        x = -3.0
        total = (1 - p) + p * math.exp(x)
        d_x = p * math.exp(x) / total  # dL/dx = dL/d ln p
        d_log_1mp = (1 - p) / total
        log_p, log_1mp = math.log(p), math.log(1 - p)
        self.check(
            [2_000_000, 0], b, 0, -3_000_000, math.log(total), [(d_x, abs(log_p) + abs(x)), (d_log_1mp, abs(log_1mp))]
        )

    def test_buying_past_where_e_to_the_x_overflows(self):
        # outcome 0 is 690 b behind (p = e^-690), x = 705: L = ln(1 + e^t), t = ln p + ln(e^x - 1) = 15
        b = 1e6
        log_p, x = -690.0, 705.0
        t = log_p + x + math.log1p(-math.exp(-x))
        log_factor = t + math.log1p(math.exp(-t))
        d_t = 1 / (1 + math.exp(-t))  # dL/dt; t carries the errors of ln p, x and its own
        self.check([0, 690_000_000], b, 0, 705_000_000, log_factor, [(d_t, abs(log_p) + abs(x) + abs(t))])
        assert log_factor == pytest.approx(15.0000003059, abs=1e-10)

    def test_a_trade_of_nothing_has_no_error(self):
        value, error = lmsr._trade([5, 0], 1e6, 0, 0)
        assert value == 0.0 and error == pytest.approx(1e6 * 1e-300, rel=1e-12)


class TestExtremes:
    """Trades where exp() overflows or a price is below the smallest double: the log-space branches,
    against the 50-digit reference."""

    def test_buying_an_outcome_whose_price_is_subnormal(self):
        # outcome 0 is 800 b behind: p = e^-800 is no double at all; buying shares still costs e^-800-ish
        b = 1e6
        q = [0, 800_000_000]
        shares = 705 * 10**6  # x = 705: the cost is about b (705 - 800 + ...)... far below a micro-unit
        exact = ref_trade(q, b, 0, shares)
        assert lmsr.cost_of_trade(q, b, 0, shares) == pytest.approx(float(exact), rel=1e-12, abs=1e-300)
        shares = 850 * 10**6  # x = 850 > 700: ln(1 + e^t) with t = 50
        assert lmsr.cost_of_trade(q, b, 0, shares) == pytest.approx(float(ref_trade(q, b, 0, shares)), rel=1e-12)

    def test_buying_just_past_the_overflow_with_a_moderate_result(self):
        b = 1e6
        q = [0, 690_000_000]
        exact = ref_trade(q, b, 0, 705_000_000)  # b (15 + 3.06e-7...)
        assert lmsr.cost_of_trade(q, b, 0, 705_000_000) == pytest.approx(float(exact), rel=1e-13)
        assert float(exact) == pytest.approx(15.0000003059e6, rel=1e-10)

    @pytest.mark.parametrize(("behind", "amount"), [(750, 1), (750, 1000), (750, 10**6), (740, 1e-6)])
    def test_spending_on_an_outcome_whose_price_is_subnormal(self, behind, amount):
        # b = 1e12 and 1 micro-unit: x = 1e-12, e^x - 1 must not be taken as 1 - e^-x (which keeps 4 digits);
        # e^-740 keeps 2 significant bits as a double: it must not be divided by
        b = 1e12
        q = [0, behind * 10**12]
        exact = ref_shares_for_amount(q, b, 0, amount)
        assert lmsr.shares_for_amount(q, b, 0, amount) == pytest.approx(float(exact), rel=1e-12)

    @pytest.mark.parametrize(("behind", "spend"), [(800, 1.0), (10, 720.0), (0, 1000.0)])
    def test_spending_where_the_direct_formula_would_overflow(self, behind, spend):
        b = 1e6
        q = [0, int(behind * b)]
        amount = spend * b
        exact = ref_shares_for_amount(q, b, 0, amount)
        assert lmsr.shares_for_amount(q, b, 0, amount) == pytest.approx(float(exact), rel=1e-12)


# --------------------------------------------------------------------------------------------
# properties


class TestPrices:
    @SETTINGS
    @given(
        st.lists(st.floats(-1e15, 1e15), min_size=2, max_size=6),
        st.floats(1e-3, 1e9),
    )
    def test_probability_vector_for_any_state(self, q, b):
        p = lmsr.prices(q, b)
        assert all(math.isfinite(x) and 0.0 <= x <= 1.0 for x in p)
        assert math.fsum(p) == pytest.approx(1.0, abs=1e-12)
        assert math.isfinite(lmsr.cost(q, b))

    @SETTINGS
    @given(markets(spread=30.0, max_outcomes=6, offset=1e7))
    def test_strictly_between_0_and_1_when_representable(self, market):
        # q / b up to 1e7, outcomes up to 30 b apart: every price >= e^-30, so the leader's
        # 1 - e^-30 still rounds below 1.0 (36.7 b apart it would not).
        q, b = market
        p = lmsr.prices(q, b)
        assert all(0.0 < x < 1.0 for x in p)
        assert math.fsum(p) == pytest.approx(1.0, abs=1e-12)

    @SETTINGS
    @given(markets(), st.data())
    def test_buying_raises_the_price_and_lowers_the_others(self, market, data):
        q, b = market
        i = data.draw(st.integers(0, len(q) - 1))
        quote = lmsr.quote_buy_shares(q, b, i, data.draw(sizes(b)))
        before = lmsr.prices(q, b)
        assert quote.price_after >= quote.price_before
        assert all(after <= p for j, (after, p) in enumerate(zip(quote.prices_after, before, strict=True)) if j != i)


class TestCostOfTrade:
    @SETTINGS
    @given(markets(spread=20.0), st.data())
    def test_matches_the_difference_of_costs_at_moderate_q(self, market, data):
        q, b = market
        i = data.draw(st.integers(0, len(q) - 1))
        shares = data.draw(sizes(b, 10.0))
        if data.draw(st.booleans()):
            shares = -min(shares, q[i]) or -1
        after = list(q)
        after[i] += shares
        difference = lmsr.cost(after, b) - lmsr.cost(q, b)
        assert lmsr.cost_of_trade(q, b, i, shares) == pytest.approx(difference, rel=1e-9, abs=1e-9 * b)

    @SETTINGS
    @given(
        markets(spread=100.0, offset=1e6),
        st.data(),
        st.one_of(st.integers(1, 100), st.integers(1, 10**12)),
        st.booleans(),
    )
    def test_accurate_against_50_digits_even_for_tiny_trades_at_huge_q(self, market, data, shares, sell):
        q, b = market  # q up to 1e6 b (up to ~1e18 micro-shares), so C(q) is ~1e18 while a trade may cost ~1e-40
        i = data.draw(st.integers(0, len(q) - 1))
        delta = -shares if sell else shares
        exact = ref_trade(q, b, i, delta)
        computed = lmsr.cost_of_trade(q, b, i, delta)
        assert computed == pytest.approx(float(exact), rel=1e-9, abs=1e-300)

    @SETTINGS
    @given(markets(spread=2000.0, offset=1e4), st.data())
    def test_error_bound_covers_the_float_error(self, market, data):
        """The rounding guard: the float error is within the bound the quotes add before rounding."""
        q, b = market
        i = data.draw(st.integers(0, len(q) - 1))
        delta = data.draw(st.one_of(st.integers(-(10**13), 10**13), st.integers(-1000, 1000)))
        assume(delta != 0)
        value, error = lmsr._trade(q, b, i, delta)
        assert abs(Decimal(value) - ref_trade(q, b, i, delta)) <= Decimal(error)

    @SETTINGS
    @given(markets(spread=30.0), st.data())
    def test_path_independence(self, market, data):
        q, b = market
        i = data.draw(st.integers(0, len(q) - 1))
        x = data.draw(sizes(b, 5.0))
        once = lmsr.cost_of_trade(q, b, i, 2 * x)
        first = lmsr.cost_of_trade(q, b, i, x)
        after = list(q)
        after[i] += x
        second = lmsr.cost_of_trade(after, b, i, x)
        assert first + second == pytest.approx(once, rel=1e-9, abs=1e-9 * b)

        whole = lmsr.quote_buy_shares(q, b, i, 2 * x).cost
        split = lmsr.quote_buy_shares(q, b, i, x).cost + lmsr.quote_buy_shares(after, b, i, x).cost
        # One extra trade: at most one more micro-unit of rounding up, plus at most one from the
        # float-error allowance at prices within ~1e-12 of 1 (rounding always favours the maker).
        assert 0 <= split - whole <= 2

    @SETTINGS
    @given(markets(spread=200.0), st.data())
    def test_shares_for_amount_inverts_cost_of_trade(self, market, data):
        q, b = market
        i = data.draw(st.integers(0, len(q) - 1))
        amount = data.draw(sizes(b, 50.0))
        shares = lmsr.shares_for_amount(q, b, i, amount)
        assert shares > 0
        assert lmsr.cost_of_trade(q, b, i, shares) == pytest.approx(amount, rel=1e-9, abs=1e-9 * b)

    @SETTINGS
    @given(markets(spread=30.0), st.data())
    def test_shares_for_negative_amount_inverts_a_sale(self, market, data):
        q, b = market
        i = data.draw(st.integers(0, len(q) - 1))
        # Ask for a fraction of the most a sale could ever raise, -b ln(1 - p_i).
        ceiling = -b * math.log1p(-lmsr.prices(q, b)[i])
        target = -ceiling * data.draw(st.floats(1e-9, 0.999))
        assume(target < 0)
        shares = lmsr.shares_for_amount(q, b, i, target)
        assert shares < 0
        assert lmsr.cost_of_trade(q, b, i, shares) == pytest.approx(target, rel=1e-8, abs=1e-9 * b)
        with pytest.raises(ValueError, match="can raise less than"):
            lmsr.shares_for_amount(q, b, i, -ceiling * 1.001)


class TestIntegerQuotes:
    @SETTINGS
    @given(markets(spread=1000.0, offset=1e5), st.data())
    def test_rounding_never_favours_the_trader_against_exact_maths(self, market, data):
        q, b = market
        i = data.draw(st.integers(0, len(q) - 1))
        shares = data.draw(sizes(b, 100.0))
        buy = lmsr.quote_buy_shares(q, b, i, shares)
        exact_cost = ref_trade(q, b, i, shares)
        # Rounded up after the float error allowance: at most one micro-unit plus twice that
        # allowance above the exact cost (the allowance is ~1e-15 b: 0.001 micro-units at b = 7e11,
        # where a cost of 0.999 was charged 2).
        allowance = Decimal(lmsr._trade(q, b, i, shares)[1])
        assert exact_cost <= buy.cost < exact_cost + 1 + 2 * allowance + Decimal("1e-6")
        assert buy.cost >= 1 and buy.shares == shares and buy.side == "buy"

        sale = lmsr.quote_sell_shares(q, b, i, shares)
        exact_proceeds = -ref_trade(q, b, i, -shares)
        allowance = Decimal(lmsr._trade(q, b, i, -shares)[1])
        assert exact_proceeds - 1 - 2 * allowance - Decimal("1e-6") < sale.proceeds <= exact_proceeds
        assert sale.cost == -sale.proceeds and sale.side == "sell"

    @SETTINGS
    @given(markets(spread=1000.0, offset=1e5), st.data())
    def test_buy_then_sell_never_profits(self, market, data):
        q, b = market
        i = data.draw(st.integers(0, len(q) - 1))
        shares = data.draw(sizes(b, 100.0))
        buy = lmsr.quote_buy_shares(q, b, i, shares)
        after = list(q)
        after[i] += shares
        sale = lmsr.quote_sell_shares(after, b, i, shares)
        assert sale.proceeds <= buy.cost
        assert sale.prices_after == pytest.approx(lmsr.prices(q, b), abs=1e-12)

    @SETTINGS
    @given(markets(spread=1000.0, offset=1e5), st.data())
    def test_sell_then_buy_back_never_profits(self, market, data):
        q, b = market
        i = data.draw(st.integers(0, len(q) - 1))
        assume(q[i] > 0)
        shares = min(q[i], data.draw(sizes(b, 100.0)))
        sale = lmsr.quote_sell_shares(q, b, i, shares)
        after = list(q)
        after[i] -= shares
        assert lmsr.quote_buy_shares(after, b, i, shares).cost >= sale.proceeds

    @SETTINGS
    @given(markets(spread=1000.0, offset=1e5), st.data())
    def test_buy_amount_never_charges_more_than_the_amount(self, market, data):
        q, b = market
        i = data.draw(st.integers(0, len(q) - 1))
        amount = data.draw(sizes(b, 100.0))
        try:
            quote = lmsr.quote_buy_amount(q, b, i, amount)
        except ValueError:
            # Only when not even one micro-share is affordable: one costs ceil(< 1 micro-unit + guard).
            assert lmsr.quote_buy_shares(q, b, i, 1).cost > amount
            return
        assert 1 <= quote.cost <= amount
        assert quote.shares >= 1
        assert quote.cost == lmsr.quote_buy_shares(q, b, i, quote.shares).cost
        raw = lmsr.shares_for_amount(q, b, i, amount)
        assert quote.shares <= raw + 1e-9 * raw  # rounded down, never up
        if 1e-6 < lmsr.prices(q, b)[i] < 1 - 1e-6:
            assert quote.shares >= math.floor(raw) - 2  # and not much more than rounded down

    @settings(max_examples=60, deadline=None)
    @given(
        st.integers(2, 4),
        st.integers(1_000, 10**11),
        st.lists(
            st.tuples(
                st.sampled_from(["buy_shares", "buy_amount", "sell"]),
                st.integers(0, 3),
                st.floats(1e-6, 30.0),
            ),
            max_size=25,
        ),
    )
    def test_maker_loses_at_most_the_subsidy(self, n, subsidy, trades):
        b = lmsr.liquidity_from_subsidy(subsidy, n)
        q = [0] * n
        collected = 0
        for kind, outcome, size in trades:
            i = outcome % n
            units = max(1, int(size * b))
            if kind == "buy_shares":
                quote = lmsr.quote_buy_shares(q, b, i, units)
                q[i] += quote.shares
            elif kind == "buy_amount":
                try:
                    quote = lmsr.quote_buy_amount(q, b, i, units)
                except ValueError:
                    continue
                assert quote.cost <= units
                q[i] += quote.shares
            else:
                if q[i] == 0:
                    continue
                quote = lmsr.quote_sell_shares(q, b, i, min(units, q[i]))
                q[i] -= quote.shares
            collected += quote.cost

        # Rounding never favours traders: the maker has collected at least C(q) - C(0) exactly.
        assert collected >= ref_cost(q, b) - ref_cost([0] * n, b)
        for winner in range(n):
            payout = lmsr.payout_at_resolution(q, winner)
            assert collected - payout >= -subsidy
        assert lmsr.maker_loss_bound(b, n) == subsidy
