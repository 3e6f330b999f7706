"""Chronon quickstart style: purchase features per user over 3, 14 and 30 days, plus the last 10 prices.

Uses the tutorial's short imports (``from ai.chronon import ...``).
"""
from ai.chronon import Aggregation, EventSource, GroupBy, Operation, Query, Source, TimeUnit, Window, select

source = Source(
    events=EventSource(
        table="data.purchases",  # the log table with historical purchase events
        query=Query(
            selects=select("user_id", "purchase_price"),
            time_column="ts",
        ),
    )
)

window_sizes = [Window(length=day, timeUnit=TimeUnit.DAYS) for day in [3, 14, 30]]

v1 = GroupBy(
    sources=[source],
    keys=["user_id"],
    online=True,
    aggregations=[
        Aggregation(input_column="purchase_price", operation=Operation.SUM, windows=window_sizes),
        Aggregation(input_column="purchase_price", operation=Operation.COUNT, windows=window_sizes),
        Aggregation(input_column="purchase_price", operation=Operation.AVERAGE, windows=window_sizes),
        Aggregation(input_column="purchase_price", operation=Operation.LAST_K(10)),
    ],
)
