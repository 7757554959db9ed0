"""Scheduled queues per destination, ready queues per site, retries, expiry and bounces."""
