"""Test controls: injected faults and server-side moves, for testing apps against cogsync.

Off unless the server runs with ``--test-controls`` (``COGSYNC_TEST_CONTROLS=1``); then
the HTTP edge asks :meth:`TestControls.intercept` before each operation and sends
``/_cogsync/test/...`` to :meth:`TestControls.handle`. What they hold lives in the
memory of the one server process (so the flag refuses ``--workers`` above 1).
"""
