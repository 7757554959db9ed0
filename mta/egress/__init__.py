"""The node's egress paths: shaping rules, throttles and leases, automation, and the TSA link."""
