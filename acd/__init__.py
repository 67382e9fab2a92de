"""Automatic call distribution: the routing core (no I/O) and the AMI link."""
