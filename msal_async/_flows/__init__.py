"""One short coroutine per grant: build, send, parse, commit."""
