"""Fakes of internet services, as real HTTP servers on loopback."""
