"""Deadlines and absences: routes with `expect:` act when something that should happen does not."""
