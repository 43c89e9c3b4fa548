"""PostgreSQL only: ``market_trade_apply``, a whole trade in one statement (issue 23).

The trade service prices a trade in Python (``market/lmsr.py``) on the market state it last saw,
then calls this function, which applies it only if that state is still the market's: one round
trip, and the market's row lock is held for the function and its commit only (a trade run as
a dozen statements held it across a dozen round trips). It takes the locks in the same order as
the generic path (market, position, accounts in id order) and checks what that path checks; where
it would refuse, raise or do more (a retried key, a closed market, too few shares or funds, a
reader's first trade, a Bayesian update to request) it writes nothing and answers ``fallback``,
and the service runs the generic path, which decides. A no-op on SQLite.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION market_trade_apply(
    p_market bigint, p_user integer, p_outcome integer, p_shares bigint, p_cost bigint,
    p_liquidity double precision, p_expected jsonb,
    p_price_before double precision, p_price_after double precision, p_prices jsonb,
    p_key varchar, p_memo varchar, p_at timestamptz,
    OUT o_status text, OUT o_trade bigint, OUT o_txn bigint, OUT o_shares jsonb, OUT o_liquidity double precision
) LANGUAGE plpgsql AS $$
DECLARE
    v_maker bigint;
    v_status varchar;
    v_opens timestamptz;
    v_closes timestamptz;
    v_question bigint;
    v_position bigint;
    v_held bigint;
    v_account bigint;
    v_balance bigint;
    v_maker_balance bigint;
    r record;
BEGIN
    o_status := 'fallback';
    -- 1. The market row, locked: trades on one market queue here.
    SELECT m.maker_id, m.liquidity, m.shares, m.status, q.opens_at, q.closes_at, m.question_id
      INTO v_maker, o_liquidity, o_shares, v_status, v_opens, v_closes, v_question
      FROM market_market m JOIN forecasting_question q ON q.id = m.question_id
     WHERE m.id = p_market
       FOR UPDATE OF m;
    IF NOT FOUND OR v_status IS DISTINCT FROM 'open' OR NOT coalesce(v_opens <= p_at AND p_at < v_closes, false) THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM market_trade t WHERE t.user_id = p_user AND t.idempotency_key = p_key) THEN
        RETURN;  -- a retry: the generic path returns the first trade (or refuses a reused key)
    END IF;
    -- 2. Priced on another state: the caller prices again on this one.
    IF p_expected IS NULL OR o_shares IS DISTINCT FROM p_expected OR o_liquidity IS DISTINCT FROM p_liquidity THEN
        o_status := 'stale';
        RETURN;
    END IF;
    -- The price moves an input of the Bayesian aggregate: the generic path requests its update.
    IF EXISTS (
        SELECT 1 FROM forecasting_aggregatestate a WHERE a.question_id = v_question AND NOT a.bayes_pending
    ) THEN
        RETURN;
    END IF;
    -- 3. The reader's position in this outcome, locked.
    SELECT p.id, p.shares INTO v_position, v_held
      FROM market_position p
     WHERE p.market_id = p_market AND p.user_id = p_user AND p.outcome = p_outcome
       FOR UPDATE;
    IF p_shares < 0 AND coalesce(v_held, 0) < -p_shares THEN
        RETURN;
    END IF;
    -- 4. The reader's account and the maker's, locked in id order.
    FOR r IN
        SELECT a.id, a.balance FROM market_account a
         WHERE a.id = v_maker OR (a.user_id = p_user AND a.kind = 'user')
         ORDER BY a.id
           FOR UPDATE
    LOOP
        IF r.id = v_maker THEN
            v_maker_balance := r.balance;
        ELSE
            v_account := r.id;
            v_balance := r.balance;
        END IF;
    END LOOP;
    IF v_account IS NULL OR v_maker_balance IS NULL OR p_cost > v_balance OR v_maker_balance + p_cost < 0 THEN
        RETURN;
    END IF;
    -- 5. The ledger transaction and the trade (a key racing on another market: nothing written).
    INSERT INTO market_ledgertransaction (kind, market_id, memo, created_at)
    VALUES ('trade', p_market, p_memo, p_at)
    RETURNING id INTO o_txn;
    INSERT INTO market_trade (
        market_id, user_id, outcome, shares, cost, price_before, price_after,
        idempotency_key, ledger_transaction_id, created_at
    )
    VALUES (p_market, p_user, p_outcome, p_shares, p_cost, p_price_before, p_price_after, p_key, o_txn, p_at)
    ON CONFLICT (user_id, idempotency_key) DO NOTHING
    RETURNING id INTO o_trade;
    IF o_trade IS NULL THEN
        DELETE FROM market_ledgertransaction WHERE id = o_txn;
        o_txn := NULL;
        RETURN;
    END IF;
    -- 6. The money: the reader pays the maker (a sale: the maker pays the reader).
    IF p_cost <> 0 THEN
        UPDATE market_account SET balance = balance + CASE WHEN id = v_maker THEN p_cost ELSE -p_cost END
         WHERE id IN (v_account, v_maker);
        INSERT INTO market_ledgerentry (transaction_id, account_id, amount)
        VALUES (o_txn, v_account, -p_cost), (o_txn, v_maker, p_cost);
    END IF;
    -- 7. The position, the market's shares (computed here, from the locked row) and the price history.
    IF v_position IS NULL THEN
        INSERT INTO market_position (market_id, user_id, outcome, shares, invested)
        VALUES (p_market, p_user, p_outcome, p_shares, p_cost);
    ELSE
        UPDATE market_position SET shares = shares + p_shares, invested = invested + p_cost WHERE id = v_position;
    END IF;
    o_shares := jsonb_set(o_shares, ARRAY[p_outcome::text], to_jsonb((o_shares ->> p_outcome)::bigint + p_shares));
    UPDATE market_market SET shares = o_shares WHERE id = p_market;
    INSERT INTO market_pricepoint (market_id, at, prices, trade_id) VALUES (p_market, p_at, p_prices, o_trade);
    o_status := 'ok';
END
$$;
"""

DROP = (
    "DROP FUNCTION IF EXISTS market_trade_apply(bigint, integer, integer, bigint, bigint, double precision, jsonb,"
    " double precision, double precision, jsonb, varchar, varchar, timestamptz)"
)


def create_function(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION)


def drop_function(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("market", "0001_initial")]

    operations = [migrations.RunPython(create_function, drop_function)]
