"""cogsync's own HTTP/1.1 server: the edge that faces the network.

It enforces the limits of a production front end on every connection before any request
reaches the application (request line, header count and bytes, header, body and idle
timeouts), answers a client that half-closes, shuts down gracefully, and runs the ASGI
application with keep-alive, pipelining, chunked bodies, ``Expect: 100-continue`` and
streamed responses.
"""
