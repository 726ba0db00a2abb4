"""Fakes of vendor servers that speak the real protocols, for tests and simulations."""
