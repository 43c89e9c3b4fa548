"""Play-money market: accounts with an append-only double-entry ledger, LMSR markets, trades.

Money and shares are integers in micro-units (1 unit = 1,000,000). Every movement of money is
a ``LedgerTransaction`` whose ``LedgerEntry`` amounts sum to zero, and an account's balance
always equals the sum of its entries (the balance column is a cache updated in the same
transaction, under the account's row lock).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

MICRO = 1_000_000


class Account(models.Model):
    class Kind(models.TextChoices):
        USER = "user", "Reader"
        DEBT = "debt", "Reader's debt"  # what a reader owes after a reversal they could not cover
        MAKER = "maker", "Market maker"
        MINT = "mint", "Play-money issuer"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="accounts"
    )
    balance = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="mint") | Q(kind="debt", balance__lte=0) | (~Q(kind="debt") & Q(balance__gte=0)),
                name="account_balance_sign",
            ),
            models.UniqueConstraint(
                fields=["user", "kind"], condition=Q(user__isnull=False), name="one_account_per_user_kind"
            ),
            models.UniqueConstraint(fields=["kind"], condition=Q(kind="mint"), name="one_mint"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.user or self.pk}"


class LedgerTransaction(models.Model):
    class Kind(models.TextChoices):
        GRANT = "grant", "Starting grant"
        SUBSIDY = "subsidy", "Market subsidy"
        TRADE = "trade", "Trade"
        PAYOUT = "payout", "Resolution payout"
        REFUND = "refund", "Annulment refund"
        REVERSAL = "reversal", "Reversal"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    market = models.ForeignKey("Market", null=True, blank=True, on_delete=models.PROTECT, related_name="ledger")
    reverses = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by")
    memo = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"


class LedgerEntry(models.Model):
    transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="entries")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries")
    amount = models.BigIntegerField(help_text="Micro-units; positive credits the account.")

    class Meta:
        indexes = [models.Index(fields=["account"], name="ledger_entry_account_idx")]
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="ledger_entry_nonzero")]

    def __str__(self) -> str:
        return f"{self.amount:+} to {self.account_id}"


class Market(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"
        RESOLVED = "resolved", "Resolved"
        ANNULLED = "annulled", "Annulled"

    question = models.OneToOneField("forecasting.Question", on_delete=models.PROTECT, related_name="market")
    maker = models.OneToOneField(Account, on_delete=models.PROTECT, related_name="market")
    subsidy = models.BigIntegerField(help_text="Micro-units; the maker's worst-case loss.")
    liquidity = models.FloatField(help_text="LMSR b in micro-units: subsidy / ln(outcomes).")
    shares = models.JSONField(help_text="Outstanding micro-shares per outcome ([NO, YES] or one per option).")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    resolved_outcome = models.PositiveSmallIntegerField(null=True, blank=True)
    settlement = models.OneToOneField(
        LedgerTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="settled_market"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(subsidy__gt=0), name="market_subsidy_positive")]

    def __str__(self) -> str:
        return f"market on {self.question_id}"


class Position(models.Model):
    """A reader's shares in one outcome, and the money they put in net (for P&L and annulment)."""

    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="positions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="positions")
    outcome = models.PositiveSmallIntegerField()
    shares = models.BigIntegerField(default=0)
    invested = models.BigIntegerField(default=0, help_text="Micro-units paid in minus micro-units taken out.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["market", "user", "outcome"], name="position_unique"),
            models.CheckConstraint(condition=Q(shares__gte=0), name="position_shares_nonnegative"),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.shares} on {self.outcome} in {self.market_id}"


class Trade(models.Model):
    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="trades")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="trades")
    outcome = models.PositiveSmallIntegerField()
    shares = models.BigIntegerField(help_text="Micro-shares; negative for a sale.")
    cost = models.BigIntegerField(help_text="Micro-units paid; negative when the reader received money.")
    price_before = models.FloatField()
    price_after = models.FloatField()
    idempotency_key = models.CharField(max_length=80)
    ledger_transaction = models.OneToOneField(LedgerTransaction, on_delete=models.PROTECT, related_name="trade")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "idempotency_key"], name="trade_idempotency_key_unique"),
            models.CheckConstraint(condition=~Q(shares=0), name="trade_shares_nonzero"),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.shares:+} on {self.outcome} for {self.cost}"


class PricePoint(models.Model):
    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="price_history")
    at = models.DateTimeField(default=timezone.now)
    prices = models.JSONField()
    trade = models.OneToOneField(Trade, null=True, blank=True, on_delete=models.CASCADE, related_name="+")

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.market_id} at {self.at:%Y-%m-%d %H:%M}: {self.prices}"
