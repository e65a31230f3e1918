"""What the administrator's set-up does: databases, roles, the services' databases, the source files."""
