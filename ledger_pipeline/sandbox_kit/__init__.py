"""What every rail's sandbox shares, whatever the rail: switchable faults, a sliding-window rate limit, and serving
over HTTP on loopback. A rail's sandbox adds its own wire format (errors, bodies) on top."""
