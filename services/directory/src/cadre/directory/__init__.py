"""The directory service: Org unit tree, people, roles, geofences, workday calendars,
credentials and token signing keys."""
