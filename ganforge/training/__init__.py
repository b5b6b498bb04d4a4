"""The training loop and what it schedules."""
