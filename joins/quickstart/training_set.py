"""Chronon quickstart style: enrich checkout events with the user's purchase and profile features."""
from ai.chronon.api.ttypes import EventSource, Source
from ai.chronon.join import Join, JoinPart
from ai.chronon.query import Query, select
from group_bys.quickstart import purchases, users

source = Source(
    events=EventSource(
        table="data.checkouts",
        query=Query(selects=select("user_id"), time_column="ts"),
    )
)

v1 = Join(
    left=source,
    right_parts=[JoinPart(group_by=purchases.v1), JoinPart(group_by=users.v1)],
)
