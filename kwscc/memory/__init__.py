"""Static memory planning: liveness over the schedule and offsets in one arena."""
