"""Agent presence and compliance: state machines without I/O."""
