"""What every frontend calls, one owner per operation: submits, queries, actions, bulk, flow
limits, schedules, waiting and the live feed, transfer between stores."""
