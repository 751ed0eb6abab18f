"""Engine plugins of the integration tests: one pytest plugin per engine (see ../conftest.py)."""
