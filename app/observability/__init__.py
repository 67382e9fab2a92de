"""Observability of the hotline: Prometheus metrics and the managers' live wallboard.

``metrics`` holds the metric families and the listener that feeds them from the core; ``wiring``
puts metrics and the wallboard (``app.services.wallboard``) into the application.
"""
