"""The benchmark harness: tasks, cost, a resumable grid runner (local | ray), peers, and the report."""
