"""Switchover and failover benchmarks of failsafe.datastores (python -m bench)."""
