"""Online experiments: assignment, storage, serving choice, statistics and the report."""
