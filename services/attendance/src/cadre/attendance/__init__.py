"""The attendance service: Device bindings, GPS check-ins, leave requests with approval
chains, and day close."""
