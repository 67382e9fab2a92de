"""Development and test tooling kept out of the service package (``app``) that the image ships.

``devtools.local_asterisk`` provisions and runs a local Asterisk 22 for development and the
end-to-end tests; ``hotline asterisk`` and ``hotline run --with-asterisk`` import it only when used.
"""
